# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the numbers were measured on: the machine, the tools' versions, the host container's CPUs and cgroup version,
and where the containers' CPU time can be read."""
from __future__ import annotations

import os
import pathlib
import platform

from commands import Host, run
from cpu_accounting import container_cpu_file


def machine(opts, host: Host) -> tuple:
    """(what the record says of the machine: CPUs, memory, kernel, cgroup version, load, tool versions; the
    containers' CPU time files by role, host and client; whether the host container has cgroup v2)."""
    info = {'nproc': os.cpu_count(), 'kernel': platform.release(), 'load_before': [round(x, 2) for x in os.getloadavg()]}
    try:
        info['nproc'] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    for line in pathlib.Path('/proc/cpuinfo').read_text(encoding='utf-8', errors='replace').splitlines():
        if line.startswith('model name'):
            info['cpu_model'] = line.split(':', 1)[1].strip()
            break
    for line in pathlib.Path('/proc/meminfo').read_text(encoding='utf-8').splitlines():
        if line.startswith('MemTotal:'):
            info['memory_mb'] = int(line.split()[1]) // 1024
    info['cgroup'] = 'v2' if pathlib.Path('/sys/fs/cgroup/cgroup.controllers').exists() else 'v1'
    info['engine'] = run([opts.cli, '--version'], 60).stdout.strip()
    info['ansible'] = run(['ansible-playbook', '--version'], 60).stdout.splitlines()[0].strip()
    if opts.client:
        wrk_version = run([opts.cli, 'exec', opts.client, 'wrk', '-v'], 60, check=False)
        text = (wrk_version.stdout + wrk_version.stderr).strip()
        info['wrk'] = text.splitlines()[0] if text else 'wrk'
    info['host_nproc'] = int(host.shell('nproc'))
    cpu_sources = {}
    for role, name in (('host', opts.host), ('client', opts.client)):
        if not name:
            continue
        pid = run([opts.cli, 'inspect', '--format', '{{.State.Pid}}', name], 60).stdout.strip()
        cpu_sources[role] = container_cpu_file(pid)
    info['container_cpu_accounting'] = {role: source[1] for role, source in cpu_sources.items()}
    cgroup_v2 = host.shell('test -e /sys/fs/cgroup/cgroup.controllers && echo v2 || echo v1') == 'v2'
    return info, cpu_sources, cgroup_v2
