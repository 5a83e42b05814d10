# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where a fleet service listens and whom it admits, from a host's ansible_facts.

Documentation lives in the sidecar files fleet_address.yml,
fleet_client_addresses.yml and listen_address_problem.yml. The filters are
pure: they read the facts and options they are given and return new values.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

# Interfaces that are never the fleet's network: loopback and the bridges and
# veth pairs of container engines and hypervisors on the host itself.
IGNORED = ('lo', 'docker*', 'podman*', 'cni*', 'br-*', 'veth*', 'virbr*', 'lxcbr*', 'lxdbr*',
           'flannel*', 'cali*', 'cilium*', 'kube-*', 'vxlan.calico', 'tunl0')
WILDCARDS = ('0.0.0.0', '::', '*')
# flaskfleet_private_networks' default: RFC 1918, carrier-grade NAT (RFC 6598: Tailscale
# and some clouds' private networks), IPv6 unique local addresses.
PRIVATE_NETWORKS = ('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7')


def _networks(fqcn, networks):
    if networks is None:
        networks = PRIVATE_NETWORKS
    if isinstance(networks, (str, bytes)) or not isinstance(networks, Sequence):
        raise AnsibleFilterError(f'{fqcn}: networks must be a list of CIDR networks, got {networks!r}')
    parsed = []
    for item in networks:
        try:
            parsed.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError as error:
            raise AnsibleFilterError(f'{fqcn}: {item!r} in networks is not a CIDR network: {error}') from error
    return parsed


def _facts(fqcn, facts):
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError(f'{fqcn}: the input must be a host\'s ansible_facts (a mapping), got {type(facts).__name__}')
    return facts


def _interface_addresses(facts):
    """(interface, address, network) for every global address of every interface, IPv4 first."""
    found = []
    for name in facts.get('interfaces') or []:
        info = facts.get(name) or facts.get(str(name).replace('-', '_')) or {}
        if not isinstance(info, Mapping):
            continue
        v4 = [info.get('ipv4')] if isinstance(info.get('ipv4'), Mapping) else []
        v4 += [item for item in info.get('ipv4_secondaries') or [] if isinstance(item, Mapping)]
        for item in v4:
            if item.get('address'):
                prefix = item.get('prefix') or item.get('netmask') or '32'
                found.append((name, item['address'], ipaddress.ip_interface(f"{item['address']}/{prefix}").network))
        for item in info.get('ipv6') or []:
            if not isinstance(item, Mapping) or not item.get('address') or item.get('scope') in ('link', 'host'):
                continue
            address = item['address'].split('%', 1)[0]
            found.append((name, address, ipaddress.ip_interface(f"{address}/{item.get('prefix') or 128}").network))
    return found


def _inside(address, networks):
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in networks)


def _candidates(facts, networks, ignored):
    by_interface = {}
    for name, address, network in _interface_addresses(facts):
        if any(fnmatch.fnmatchcase(str(name), pattern) for pattern in ignored):
            continue
        if _inside(address, networks):
            by_interface.setdefault(name, []).append((address, network))
    return by_interface


def fleet_address(facts, networks=None, ignored=IGNORED, var='the listen address', host=''):
    """The host's one address on the fleet's private network, or the problem that prevents choosing it.

    Returns {'address', 'interface', 'network', 'problem'}; 'problem' is '' when an address was found.
    """
    fqcn = 'flaskfleet.stack.fleet_address'
    facts = _facts(fqcn, facts)
    nets = _networks(fqcn, networks)
    matches = _candidates(facts, nets, list(ignored or ()))
    who = host or 'this host'
    if len(matches) == 1:
        interface, addresses = next(iter(matches.items()))
        address, network = addresses[0]  # IPv4 before IPv6, primary before secondaries
        return {'address': address, 'interface': interface, 'network': str(network), 'problem': ''}
    wanted = ', '.join(str(net) for net in nets)
    if not matches:
        problem = (f'{var}: {who} has no interface with an address in flaskfleet_private_networks ({wanted}),'
                   f' so there is no private address to listen on. Set {var} to the address of the interface'
                   ' the fleet reaches it by, or add that network to flaskfleet_private_networks.')
    else:
        listed = '; '.join(f"{name} ({', '.join(a for a, _n in found)})" for name, found in sorted(matches.items()))
        problem = (f'{var}: {who} has {len(matches)} interfaces in flaskfleet_private_networks: {listed}.'
                   f' Which one the fleet uses cannot be guessed: set {var} to its address.')
    return {'address': '', 'interface': '', 'network': '', 'problem': problem}


def fleet_client_addresses(facts, network, networks=None, ignored=IGNORED):
    """The addresses a client host connects from to a service on `network`.

    Its addresses inside `network` (the same subnet: the kernel picks one of them as the
    source); else its addresses in the private networks (a routed private network); else
    its default IPv4 address.
    """
    fqcn = 'flaskfleet.stack.fleet_client_addresses'
    facts = _facts(fqcn, facts)
    nets = _networks(fqcn, networks)
    try:
        same = ipaddress.ip_network(str(network), strict=False) if network else None
    except ValueError as error:
        raise AnsibleFilterError(f'{fqcn}: {network!r} is not a CIDR network: {error}') from error
    patterns = list(ignored or ())
    usable = [(address, net) for name, address, net in _interface_addresses(facts)
              if not any(fnmatch.fnmatchcase(str(name), pattern) for pattern in patterns)]
    if same is not None:
        found = [address for address, _net in usable if _inside(address, [same])]
        if found:
            return sorted(set(found), key=found.index)
    found = [address for address, _net in usable if _inside(address, nets)]
    if found:
        return sorted(set(found), key=found.index)
    default = (facts.get('default_ipv4') or {}).get('address')
    return [default] if default else []


def listen_address_problem(address, networks=None, allow_public=False, var='the listen address'):
    """'' when a service may listen on `address`; else why not, naming `var`.

    Loopback and addresses inside the private networks are accepted; a wildcard never is (it
    listens on every interface, public ones included); any other address only with
    allow_public. A leading '-' (Redis: an optional bind address) is ignored.
    """
    fqcn = 'flaskfleet.stack.listen_address_problem'
    nets = _networks(fqcn, networks)
    text = str(address).strip()
    text = text[1:] if text.startswith('-') else text
    text = text[1:-1] if text.startswith('[') and text.endswith(']') else text
    if text in WILDCARDS:
        return (f'{var}: {address!r} listens on every interface, public ones included, and Loki and Redis must'
                ' not be reachable from everywhere. Name one address (leave it empty for the host\'s address on'
                ' the fleet\'s private network).')
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return f'{var}: {address!r} is not an IP address.'
    if ip.is_loopback or _inside(text, nets):
        return ''
    if allow_public:
        return ''
    wanted = ', '.join(str(net) for net in nets)
    return (f'{var}: {address} is not in flaskfleet_private_networks ({wanted}). A public address can be reached'
            ' from the whole Internet, where scanners find an open Redis or Loki within hours. Name an address on'
            f' the fleet\'s private network, or, to listen there on purpose, keep {var} and also set'
            ' flaskfleet_allow_public_listen: true (the firewall still admits only the fleet\'s hosts).')


class FilterModule:
    """Network filters of flaskfleet.stack."""

    def filters(self):
        """Map filter names to functions."""
        return {
            'fleet_address': fleet_address,
            'fleet_client_addresses': fleet_client_addresses,
            'listen_address_problem': listen_address_problem,
        }
