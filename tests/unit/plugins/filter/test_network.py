# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack network filters (fleet_address, fleet_client_addresses,
listen_address_problem)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskfleet.stack.plugins.filter.network import FilterModule

FILTERS = FilterModule().filters()
ADDRESS = FILTERS['fleet_address']
CLIENTS = FILTERS['fleet_client_addresses']
PROBLEM = FILTERS['listen_address_problem']

PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']


def iface(v4=None, prefix=24, secondaries=(), v6=()):
    info = {}
    if v4:
        info['ipv4'] = {'address': v4, 'prefix': str(prefix)}
    if secondaries:
        info['ipv4_secondaries'] = [{'address': a, 'prefix': '24'} for a in secondaries]
    info['ipv6'] = [{'address': a, 'prefix': p, 'scope': s} for a, p, s in v6]
    return info


def facts(**interfaces):
    out = {'interfaces': [name.replace('_', '-') for name in interfaces]}
    for name, info in interfaces.items():
        out[name] = info
    public = next((i['ipv4']['address'] for i in interfaces.values() if 'ipv4' in i), None)
    if public:
        out['default_ipv4'] = {'address': public}
    return out


LOOPBACK = iface('127.0.0.1', 8, v6=[('::1', '128', 'host')])
# a VPS: public address on eth0, the fleet's private network on eth1
VPS = facts(lo=LOOPBACK, eth0=iface('203.0.113.10', v6=[('2001:db8::10', '64', 'global')]), eth1=iface('10.1.0.5', 16))


@pytest.mark.parametrize('host_facts, expected', [
    (VPS, ('10.1.0.5', 'eth1', '10.1.0.0/16')),
    # a container engine's bridge is not the fleet's network
    (facts(lo=LOOPBACK, eth0=iface('192.168.1.20'), docker0=iface('172.17.0.1', 16)), ('192.168.1.20', 'eth0', '192.168.1.0/24')),
    (facts(eth0=iface('10.89.0.3'), podman0=iface('10.88.0.1', 16), veth_1a2b=iface('10.88.0.7', 16)), ('10.89.0.3', 'eth0', '10.89.0.0/24')),
    # IPv4 before IPv6 on the same interface; a ULA-only interface gives its IPv6 address
    (facts(eth0=iface('10.0.0.2', v6=[('fd00::2', '64', 'global')])), ('10.0.0.2', 'eth0', '10.0.0.0/24')),
    (facts(eth0=iface('192.0.2.2', v6=[('fd00::2', '64', 'global'), ('fe80::1', '64', 'link')])), ('fd00::2', 'eth0', 'fd00::/64')),
    # a private address as a secondary of the public interface
    (facts(eth0=iface('198.51.100.7', secondaries=['10.5.0.7'])), ('10.5.0.7', 'eth0', '10.5.0.0/24')),
    # WireGuard and carrier-grade NAT (Tailscale) are private networks too
    (facts(eth0=iface('198.51.100.7'), wg0=iface('100.101.1.2', 32)), ('100.101.1.2', 'wg0', '100.101.1.2/32')),
])
def test_one_private_interface_gives_its_address(host_facts, expected):
    got = ADDRESS(host_facts, PRIVATE, var='redis_listen_address', host='h1')
    assert (got['address'], got['interface'], got['network'], got['problem']) == (*expected, '')


@pytest.mark.parametrize('host_facts, wanted', [
    (facts(lo=LOOPBACK, eth0=iface('203.0.113.10')), ['has no interface', 'redis_listen_address', 'h1']),
    (facts(eth0=iface('10.0.0.2'), eth1=iface('192.168.5.2')),
     ['2 interfaces', 'eth0 (10.0.0.2)', 'eth1 (192.168.5.2)', 'set redis_listen_address']),
    (facts(lo=LOOPBACK, docker0=iface('172.17.0.1', 16)), ['has no interface']),
])
def test_no_or_several_private_interfaces_name_the_variable(host_facts, wanted):
    got = ADDRESS(host_facts, PRIVATE, var='redis_listen_address', host='h1')
    assert got['address'] == ''
    for text in wanted:
        assert text in got['problem']


def test_networks_are_the_users_choice():
    # a fleet on a public /24 it owns, named as its private network
    assert ADDRESS(VPS, ['203.0.113.0/24'])['address'] == '203.0.113.10'
    assert ADDRESS(VPS, ['10.1.0.0/16'], ignored=['eth1'])['problem']


@pytest.mark.parametrize('host_facts, network, expected', [
    # the client's address in the service's subnet
    (facts(eth0=iface('203.0.113.11'), eth1=iface('10.1.0.9', 16)), '10.1.0.0/16', ['10.1.0.9']),
    # a routed private network: its private addresses
    (facts(eth0=iface('203.0.113.11'), eth1=iface('10.2.0.9', 16)), '10.1.0.0/16', ['10.2.0.9']),
    # no private address at all: its default address
    (facts(eth0=iface('203.0.113.11')), '10.1.0.0/16', ['203.0.113.11']),
    (facts(eth0=iface('10.89.0.4'), podman0=iface('10.88.0.1', 16)), '10.88.0.0/16', ['10.89.0.4']),
    (facts(eth0=iface('10.89.0.4')), '', ['10.89.0.4']),
])
def test_client_addresses(host_facts, network, expected):
    assert CLIENTS(host_facts, network, PRIVATE) == expected


@pytest.mark.parametrize('address, allow, wanted', [
    ('127.0.0.1', False, ''),
    ('::1', False, ''),
    ('-::1', False, ''),
    ('10.1.0.5', False, ''),
    ('[fd00::5]', False, ''),
    ('100.64.0.1', False, ''),
    ('203.0.113.10', True, ''),
    ('203.0.113.10', False, 'flaskfleet_allow_public_listen'),
    ('2001:db8::1', False, 'not in flaskfleet_private_networks'),
    ('0.0.0.0', False, 'every interface'),
    ('0.0.0.0', True, 'every interface'),
    ('::', True, 'every interface'),
    ('localhost', False, 'not an IP address'),
])
def test_listen_address_problem(address, allow, wanted):
    got = PROBLEM(address, PRIVATE, allow_public=allow, var='loki_listen_address')
    if wanted:
        assert wanted in got and 'loki_listen_address' in got
    else:
        assert got == ''


@pytest.mark.parametrize('call, message', [
    (lambda: ADDRESS([], PRIVATE), 'a mapping'),
    (lambda: ADDRESS({}, '10.0.0.0/8'), 'must be a list'),
    (lambda: ADDRESS({}, ['10.0.0.0/33']), 'not a CIDR network'),
    (lambda: CLIENTS({}, 'nope', PRIVATE), 'not a CIDR network'),
    (lambda: PROBLEM('10.0.0.1', ['x']), 'not a CIDR network'),
])
def test_refused(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_none_means_the_default_private_networks():
    assert ADDRESS(VPS, None)['address'] == '10.1.0.5'
    assert PROBLEM('100.64.3.4') == ''
    assert PROBLEM('192.0.2.1', None, var='x').startswith('x: 192.0.2.1 is not in flaskfleet_private_networks')
