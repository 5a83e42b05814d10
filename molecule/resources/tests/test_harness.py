# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness itself: systemd as PID 1, units that start, limits the kernel enforces."""
from __future__ import annotations

from conftest import unit_memory_limit


def test_systemd_is_pid_1_and_running(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_probe_unit_serves(host):
    assert host.service("flaskfleet-probe.service").is_running
    out = host.check_output("curl -fsS -o /dev/null -w '%{http_code}' http://127.0.0.1:8099/")
    assert out == "200"


def test_memory_max_is_enforced_by_the_kernel(host):
    assert host.check_output("systemctl show -P MemoryMax flaskfleet-probe.service") == str(64 * 1024 * 1024)
    assert unit_memory_limit(host, "flaskfleet-probe.service") == 64 * 1024 * 1024
