# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the CPU went, read on the controller: how busy the machine is (/proc/stat) and the CPU time of the bench's
containers (their cgroups, v1 or v2), split per request of a load."""
from __future__ import annotations

import os
import pathlib
import re
import time


def _cpu_times() -> tuple:
    """(all, idle) CPU time of the machine since boot, in ticks, from /proc/stat."""
    with open('/proc/stat', encoding='ascii') as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]), idle


def cpu_busy(seconds: float) -> float:
    """Percent of the machine's CPU time spent busy (all CPUs, steal included) over the next `seconds`."""
    total_before, idle_before = _cpu_times()
    time.sleep(seconds)
    total_after, idle_after = _cpu_times()
    total = total_after - total_before
    return 100.0 * (total - (idle_after - idle_before)) / total if total else 0.0


def container_cpu_file(pid: str) -> tuple:
    """(file, kind) holding the CPU time of the container whose init has this pid, read on the controller:
    cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec); (None, None) when neither is readable."""
    v2_path = None
    for line in pathlib.Path(f'/proc/{pid}/cgroup').read_text(encoding='utf-8').splitlines():
        number, controllers, path = line.split(':', 2)
        if 'cpuacct' in controllers.split(','):
            for base in ('/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpuacct'):
                if pathlib.Path(f'{base}{path}/cpuacct.usage').exists():
                    return f'{base}{path}/cpuacct.usage', 'v1'
        if number == '0' and not controllers:
            v2_path = path.removesuffix('/init.scope')
    if v2_path is not None and pathlib.Path(f'/sys/fs/cgroup{v2_path}/cpu.stat').exists():
        return f'/sys/fs/cgroup{v2_path}/cpu.stat', 'v2'
    return None, None


def cpu_ns(source: tuple) -> int | None:
    """CPU time used so far, in ns, from a container_cpu_file() result."""
    path, kind = source
    if path is None:
        return None
    text = pathlib.Path(path).read_text(encoding='ascii')
    if kind == 'v1':
        return int(text.strip())
    match = re.search(r'^usage_usec (\d+)$', text, re.MULTILINE)
    return int(match.group(1)) * 1000 if match else None


def cpu_snapshot(sources: dict) -> dict:
    """The containers' CPU time and the whole machine's (all CPUs, busy and idle), in ns."""
    total, idle = _cpu_times()
    tick_ns = 1e9 / os.sysconf('SC_CLK_TCK')
    snap = {'machine_total': total * tick_ns, 'machine_idle': idle * tick_ns}
    for name, source in sources.items():
        snap[name] = cpu_ns(source)
    return snap


def cpu_split(before: dict, after: dict, requests: int) -> dict:
    """Where the CPU went during one run: per request on the host container (nginx, Gunicorn, the journal...) and in
    the client (wrk); the share of the machine's CPU time the two got; how busy the machine was."""
    total = after['machine_total'] - before['machine_total']
    busy = total - (after['machine_idle'] - before['machine_idle'])
    result = {'machine_busy_pct': round(100.0 * busy / total, 1) if total else None}
    if before.get('host') is None or before.get('client') is None or not total:
        return result
    host = after['host'] - before['host']
    client = after['client'] - before['client']
    result.update(host_cpu_ms_per_request=round(host / 1e6 / max(requests, 1), 3),
                  client_cpu_ms_per_request=round(client / 1e6 / max(requests, 1), 3),
                  bench_share_of_machine_pct=round(100.0 * (host + client) / total, 1))
    return result
