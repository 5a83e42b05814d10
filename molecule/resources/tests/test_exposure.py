# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's exposure, seen from a host that is not in the inventory.

Redis and Loki listen on the Redis/Loki host's private address (the
scenario's network), and only the fleet's hosts reach them: an outsider
container on the same network is refused, before and after nftables is
restarted, reloaded, or the whole ruleset flushed by hand (then a rerun puts
the table back). The rerun also changes the Redis users and live settings,
and no secret of the inventory appears in any journal line, file under
/var/log, Loki query result or the controller's -vvv output of that run.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run
from flaskfleet_testlib.engine import engine_cli, instance_host
from flaskfleet_testlib.inventory import group_hosts, scenario_name
from flaskfleet_testlib.service import wait_for
from flaskfleet_testlib.stack import SUPERVISOR
from test_logs import query

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or not group_hosts("redis") or
                                group_hosts("redis")[0] in group_hosts("flask_web"),
                                reason="the fleet scenario: Redis and Loki on a host of their own")

PORTS = {"redis": 6379, "loki": 3100}
# Secrets of the scenario's inventory (.config/molecule/config.yml); the Redis admin password is read on the host.
INVENTORY_SECRETS = ("molecule-not-a-real-redis-password", "molecule-not-a-real-secret")


@pytest.fixture(scope="module")
def server():
    """The host of Redis and Loki."""
    return instance_host(group_hosts("redis")[0])


@pytest.fixture(scope="module")
def client():
    """A web host of the fleet (a client of both)."""
    return instance_host(group_hosts("flask_web")[0])


@pytest.fixture(scope="module")
def outsider():
    """A container on the scenario's network that is not in the inventory."""
    name = f"flaskfleet-outsider-{scenario_name()}"
    image = os.environ.get("FLASKFLEET_IMAGE_BOOKWORM") or os.environ["FLASKFLEET_IMAGE_TRIXIE"]
    subprocess.run([engine_cli(), "rm", "-f", name], capture_output=True, check=False)
    subprocess.run([engine_cli(), "run", "-d", "--name", name, "--network", f"flaskfleet-{scenario_name()}",
                    image, "sleep", "infinity"], check=True, capture_output=True, text=True)
    try:
        yield instance_host(name)
    finally:
        subprocess.run([engine_cli(), "rm", "-f", "-t", "0", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def address(server):
    """The one address beyond loopback that Redis and Loki listen on."""
    listening = server.check_output("ss -ltnH").splitlines()
    found = {}
    for name, port in PORTS.items():
        local = [line.split()[3].rsplit(":", 1)[0].strip("[]") for line in listening
                 if line.split()[3].rsplit(":", 1)[1] == str(port)]
        assert not {"0.0.0.0", "*", "::"} & set(local), f"{name} listens on a wildcard: {local}"
        found[name] = [a for a in local if a not in ("127.0.0.1", "::1")]
        assert len(found[name]) == 1, f"{name} listens beyond loopback on {found[name]}"
    assert found["redis"] == found["loki"]
    private = found["redis"][0]
    assert re.match(r"^(10\.|172\.(1[6-9]|2[0-9]|3[01])\.|192\.168\.)", private), private
    return private


def _connects(host, address, port):
    """'open', 'refused' or what else a TCP connect from `host` got."""
    out = host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/{port}' 2>&1")
    if out.rc == 0:
        return "open"
    return "refused" if "Connection refused" in out.stdout + out.stderr else f"rc={out.rc} {out.stdout}{out.stderr}"


def _exposure(host, address):
    return {name: _connects(host, address, port) for name, port in PORTS.items()}


def _held(outsider, client, address):
    """The firewall holds: the outsider is refused by both ports, the fleet's client reaches both."""
    return _exposure(outsider, address) == {"redis": "refused", "loki": "refused"} and \
        _exposure(client, address) == {"redis": "open", "loki": "open"}


def test_only_the_fleet_reaches_redis_and_loki(outsider, client, address):
    assert _exposure(outsider, address) == {"redis": "refused", "loki": "refused"}
    assert _exposure(client, address) == {"redis": "open", "loki": "open"}
    # what the client reached answers: Loki is ready, Redis asks for credentials
    assert client.check_output(f"curl -sS --max-time 10 http://{address}:3100/ready") == "ready"
    assert "NOAUTH" in client.check_output(f"printf 'PING\\r\\n' | timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/6379;"
                                           " cat >&3; head -n 1 <&3'")


def _secrets(server):
    admin = server.check_output("cat /etc/redis/flaskfleet-admin.secret").strip()
    assert len(admin) >= 16
    return [*INVENTORY_SECRETS, admin]


def test_the_firewall_holds_through_nftables_and_a_flush(server, outsider, client, address, tmp_path):
    name = group_hosts("redis")[0]
    assert server.run("systemctl enable --now nftables.service").rc == 0
    for action in ("restart", "reload"):
        assert server.run(f"systemctl {action} nftables.service").rc == 0
        assert wait_for(lambda: _held(outsider, client, address), timeout=15) is not None, \
            f"after systemctl {action} nftables: {_exposure(outsider, address)}"
    # A flush by hand removes every table: the outsider gets through (the test can fail),
    # the unit still says active, and the next run sees the live table, not the unit.
    assert server.run("nft flush ruleset").rc == 0
    assert _exposure(outsider, address) == {"redis": "open", "loki": "open"}
    assert server.check_output("systemctl is-active flaskfleet-firewall.service") == "active"

    # The rerun also changes the Redis users (ACL LOAD) and a live setting (CONFIG SET), with -vvv.
    began = server.check_output("date +%s")
    changed = {"redis_app_acl": "~* &* +@all -@dangerous -debug", "redis_broker_appendfsync": "always"}
    run = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", name, "--tags", "redis,loki",
                       "-vvv", "-e", json.dumps(changed)], check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    for task in ("Apply the changed (or drifted) settings to the running broker", "Load the changed users into the running broker",
                 "Load the firewall tables"):
        assert f"changed: [{name}]" in _task_output(output, task), task
    assert _held(outsider, client, address), _exposure(outsider, address)
    assert server.check_output("REDISCLI_AUTH=$(cat /etc/redis/flaskfleet-admin.secret) redis-cli --user flaskfleet-admin"
                               " -s /run/redis-broker/redis-server.sock CONFIG GET appendfsync").split() == ["appendfsync", "always"]

    # sudo logged each task of that run to the journal; none of it, nothing else, holds a secret
    sudo = server.check_output(f"journalctl -o cat --since @{began} SYSLOG_IDENTIFIER=sudo")
    assert len(re.findall(r"COMMAND=", sudo)) >= 10, sudo[-2000:]
    secrets = _secrets(server)
    hosts = {host: instance_host(host) for host in group_hosts()}
    time.sleep(6)  # Promtail's next push of what that run logged
    for secret in secrets:
        assert secret not in output, "a secret in the controller's -vvv output"
        for label, host in hosts.items():
            assert host.run(f"journalctl -o cat | grep -cF -- {shlex.quote(secret)}").stdout.strip() == "0", \
                f"a secret in {label}'s journal"
            found = host.run(f"grep -rlF --binary-files=text -- {shlex.quote(secret)} /var/log")
            assert found.stdout.strip() == "", f"a secret in {label}:{found.stdout}"
        assert query(server, f'{{host=~".+"}} |= {_logql_string(secret)}', since="2h") == [], "a secret in Loki"

    # back to the inventory's settings (another run through the same code)
    back = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", name, "--tags", "redis"], check=False)
    assert back.returncode == 0, (back.stdout + back.stderr)[-4000:]
    for secret in secrets:
        assert secret not in back.stdout + back.stderr


def _task_output(output, task):
    """What a run printed for the task whose name contains `task` (up to the next task)."""
    start = output.find(task)
    assert start >= 0, f"no task {task!r} ran"
    end = output.find("\nTASK [", start)
    return output[start:end if end >= 0 else len(output)]


def _logql_string(text):
    return "`" + text.replace("`", "") + "`"
