# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Gunicorn unit's memory under a load, from its cgroup (v1 or v2): the peak against MemoryHigh and MemoryMax,
the OOM kills and the restarts since the load began."""
from __future__ import annotations

import re

from commands import Host
from common import UNIT, BenchError, log


class UnitMemory:
    """The unit's memory on the bench host; each load's result is kept in `memory`, the record's part of them."""

    def __init__(self, host: Host, cgroup_v2: bool, memory: dict):
        self.host, self.cgroup_v2, self.memory = host, cgroup_v2, memory

    def _cgroup_files(self) -> dict:
        group = self.host.shell(f'systemctl show -P ControlGroup {UNIT}')
        if not group:
            raise BenchError(f'{UNIT} has no control group (not running?)')
        if self.cgroup_v2:
            base = f'/sys/fs/cgroup{group}'
            return {'peak': f'{base}/memory.peak', 'events': f'{base}/memory.events', 'v2': True}
        base = f'/sys/fs/cgroup/memory{group}'
        return {'peak': f'{base}/memory.max_usage_in_bytes', 'events': f'{base}/memory.oom_control', 'v2': False}

    def _oom_kills(self, files: dict) -> int:
        text = self.host.shell(f'cat {files["events"]}', check=False)
        match = re.search(r'^oom_kill (\d+)$', text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def begin(self) -> dict:
        """Reset the unit's memory peak where the kernel allows it; note its OOM kills and restarts so far."""
        files = self._cgroup_files()
        reset = False
        if not files['v2']:
            # cgroup v1: writing 0 restarts the peak from the current use.
            reset = self.host.shell(f'echo 0 > {files["peak"]} && echo ok', check=False) == 'ok'
        return {'files': files, 'reset': reset, 'oom_kill_before': self._oom_kills(files),
                'restarts_before': int(self.host.shell(f'systemctl show -P NRestarts {UNIT}') or 0),
                'main_pid': self.host.shell(f'systemctl show -P MainPID {UNIT}')}

    def end(self, label: str, begun: dict) -> dict:
        """The unit's memory peak since begin() against its caps, and the OOM kills and restarts since."""
        files = begun['files']
        peak = self.host.shell(f'cat {files["peak"]}', check=False)
        high = self.host.shell(f'systemctl show -P MemoryHigh {UNIT}')
        high_max = self.host.shell(f'systemctl show -P MemoryMax {UNIT}')
        result = {
            'peak_mb': round(int(peak) / 1048576, 1) if peak.isdigit() else None,
            'memory_high_mb': round(int(high) / 1048576, 1) if high.isdigit() else None,
            'memory_max_mb': round(int(high_max) / 1048576, 1) if high_max.isdigit() else None,
            'peak_since': 'reset before the load' if begun['reset'] else 'the unit started (memory.peak cannot be reset)',
            'oom_kills': self._oom_kills(files) - begun['oom_kill_before'],
            'unit_restarts': (int(self.host.shell(f'systemctl show -P NRestarts {UNIT}') or 0)
                              - begun['restarts_before']),
            'main_pid_same': self.host.shell(f'systemctl show -P MainPID {UNIT}') == begun['main_pid'],
            'cgroup': 'v2' if files['v2'] else 'v1',
        }
        if result['peak_mb'] and result['memory_high_mb']:
            result['peak_share_of_high'] = round(result['peak_mb'] / result['memory_high_mb'], 3)
        self.memory[label] = result
        log(f'memory {label}: peak {result["peak_mb"]} MB of MemoryHigh {result["memory_high_mb"]} MB, '
            f'OOM kills {result["oom_kills"]}')
        return result
