# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for the Molecule scenarios' testinfra tests.

Hosts are reached through the container engine's CLI (``podman exec`` or
``docker exec``), not through Ansible: one exec per command instead of one
module run. The instance list comes from Molecule's inventory.
"""
from __future__ import annotations

import os

import pytest
import testinfra
import yaml


def _instances():
    path = os.environ["MOLECULE_INVENTORY_FILE"]
    with open(path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    return sorted(inventory["all"]["hosts"])


def pytest_generate_tests(metafunc):
    if "instance" in metafunc.fixturenames:
        metafunc.parametrize("instance", _instances(), scope="module")


@pytest.fixture(scope="module")
def host(instance):
    """A testinfra host for one Molecule instance."""
    engine = os.environ.get("FLASKFLEET_ENGINE_CLI", "docker")
    return testinfra.get_host(f"{engine}://{instance}")


def unit_cgroup_dir(host, unit, controller="memory"):
    """The kernel's cgroup directory of a unit's main process, v1 or v2."""
    pid = host.check_output(f"systemctl show -P MainPID {unit}")
    assert pid not in ("", "0"), f"{unit} has no main process"
    for line in host.file(f"/proc/{pid}/cgroup").content_string.splitlines():
        _hierarchy, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return f"/sys/fs/cgroup/{controller}{path}"
    for line in host.file(f"/proc/{pid}/cgroup").content_string.splitlines():
        if line.startswith("0::"):
            return "/sys/fs/cgroup" + line[3:]
    raise AssertionError(f"no {controller} cgroup for {unit}")


def unit_memory_limit(host, unit):
    """The memory limit, in bytes, that the kernel enforces for a unit."""
    cgdir = unit_cgroup_dir(host, unit)
    for name in ("memory.limit_in_bytes", "memory.max"):
        limit = host.file(f"{cgdir}/{name}")
        if limit.exists:
            return int(limit.content_string.strip())
    raise AssertionError(f"no memory limit file in {cgdir}")
