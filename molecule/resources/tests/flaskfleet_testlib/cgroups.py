# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A systemd unit's cgroup on a host, v1 or v2: its directory, the memory limit the kernel enforces, its OOM kills."""
from __future__ import annotations


def unit_cgroup_dir(host, unit, controller="memory"):
    """The kernel's cgroup directory of a unit's main process, v1 or v2."""
    pid = host.check_output(f"systemctl show -P MainPID {unit}")
    assert pid not in ("", "0"), f"{unit} has no main process"
    lines = host.file(f"/proc/{pid}/cgroup").content_string.splitlines()
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return f"/sys/fs/cgroup/{controller}{path}"
    for line in lines:
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


def unit_oom_kills(host, unit):
    """How many processes the kernel OOM-killed in the unit's memory cgroup, counted in the
    kernel's log. Not the cgroup's own counter: when the kernel kills the main process too
    (a second kill before the first victim's memory is freed), systemd restarts the unit in a
    new cgroup whose counter starts again at 0."""
    cgdir = unit_cgroup_dir(host, unit)
    memcg = cgdir.removeprefix("/sys/fs/cgroup/memory") if cgdir.startswith("/sys/fs/cgroup/memory/") \
        else cgdir.removeprefix("/sys/fs/cgroup")
    log = host.run("dmesg")
    assert log.rc == 0, log.stderr
    return sum(1 for line in log.stdout.splitlines() if "oom-kill:" in line and f"oom_memcg={memcg}," in line)
