# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tagged run on a host never converged installs what its roles need, and no more.

A new container (Debian 13, systemd, no package lists, as a freshly built
host has them), put in the inventory's flask_web and redis groups beside
the scenario's hosts, is converged with `--tags nginx` alone: nginx is
installed, configured and answers over HTTPS, while the packages of the roles
the tags left out (Redis's server, which Debian would start with its own
configuration, the app's venv support, the supervisor's ACL tools) are not
installed. The scenario's hosts are not touched (--limit).
"""
from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from flaskfleet_testlib.ansible_cli import ansible_run
from flaskfleet_testlib.engine import engine_cli, instance_host
from flaskfleet_testlib.inventory import group_hosts, scenario_name
from flaskfleet_testlib.service import curl_in, wait_for
from flaskfleet_testlib.stack import SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or not group_hosts("redis") or
                                group_hosts("redis")[0] in group_hosts("flask_web"),
                                reason="the fleet scenario: Redis on a host of its own")

# What the roles left out by `--tags nginx` would install on this host (site.yml's packages play).
LEFT_OUT = ("redis-server", "python3-venv", "acl")


def _installed(host, package):
    return host.run(f"dpkg-query -W -f='${{Status}}' {package}").stdout.strip() == "install ok installed"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A host never converged, in flask_web and redis: (its name, an inventory file that adds it)."""
    name = f"flaskfleet-fresh-{scenario_name()}"
    image = os.environ.get("FLASKFLEET_IMAGE_TRIXIE") or os.environ["FLASKFLEET_IMAGE_BOOKWORM"]
    subprocess.run([engine_cli(), "rm", "-f", "-t", "0", name], capture_output=True, check=False)
    subprocess.run([engine_cli(), "run", "-d", "--name", name, "--network", f"flaskfleet-{scenario_name()}",
                    "--privileged", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                    "--tmpfs", "/run", "--tmpfs", "/tmp", image, "/sbin/init"],
                   check=True, capture_output=True, text=True)
    try:
        host = instance_host(name)
        # systemd's bus comes up a moment after the container starts
        assert wait_for(lambda: host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded"),
                        timeout=60) is not None, host.run("systemctl --failed --no-legend").stdout
        # no package lists, and a directory apt's cache_valid_time would take for fresh ones (as prepare leaves them)
        host.check_output("find /var/lib/apt/lists -mindepth 1 -maxdepth 1 -type f -delete && touch /var/lib/apt/lists")
        with open(os.environ["MOLECULE_INVENTORY_FILE"], encoding="utf-8") as handle:
            # how Ansible reaches the scenario's instances (its connection and engine socket)
            connection = yaml.safe_load(handle)["all"]["hosts"][group_hosts()[0]]
        path = tmp_path_factory.mktemp("fresh") / "inventory.yml"
        path.write_text(yaml.safe_dump({"flask_web": {"hosts": {name: connection}}, "redis": {"hosts": {name: None}}}),
                        encoding="utf-8")
        yield name, path
    finally:
        subprocess.run([engine_cli(), "rm", "-f", "-t", "0", name], capture_output=True, check=False)


def test_a_tagged_run_on_a_fresh_host_installs_only_its_roles_packages(fresh):
    name, inventory = fresh
    host = instance_host(name)
    assert not any(_installed(host, package) for package in ("nginx", *LEFT_OUT))
    run = ansible_run(["ansible-playbook", "-i", str(inventory), "molecule/resources/converge.yml", "--limit", name,
                       "--tags", "nginx"], check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    # the roles the tags selected: installed, configured and serving
    assert _installed(host, "nginx")
    assert host.check_output("systemctl is-active nginx.service") == "active"
    assert host.run("nginx -t").rc == 0
    served = curl_in(host, "/", "-o /dev/null", "-w '%{http_code}'")
    # no Gunicorn behind it yet (the tags left it out): nginx itself answers
    assert served.rc == 0 and served.stdout in ("502", "503"), served.stdout + served.stderr
    # the roles left out: none of their packages, no Redis server started with Debian's configuration
    assert [package for package in LEFT_OUT if _installed(host, package)] == []
    assert host.run("systemctl cat redis-server.service").rc != 0
