# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness itself: systemd is PID 1 and the boot settled."""
from __future__ import annotations

import pytest
from flaskfleet_testlib.engine import instance_host


@pytest.fixture(scope="module")
def host(any_instance):
    """Every host of the scenario, whatever its groups."""
    return instance_host(any_instance)


def test_systemd_is_pid_1_and_running(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_memory_controller_is_delegated(host):
    """Without the host cgroup namespace and a rw /sys/fs/cgroup, MemoryMax would be a no-op."""
    assert host.run("test -w /sys/fs/cgroup/memory || test -w /sys/fs/cgroup/cgroup.subtree_control").rc == 0
