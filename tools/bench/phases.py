# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One `make bench` run: its parts wired to the containers and to one record, the phases asked for in order
(converge, the I/O plan, Celery, Gunicorn's defaults, the CPU plan), and the record and its table, written even
after a failure."""
from __future__ import annotations

import json
import os
import subprocess
import time

from calibration import calibrate_cpu
from celery_tasks import CeleryRounds
from commands import Host
from common import CELERY_BATCH, CELERY_TASK_MS, CPU_TARGET_MS, IO_WAIT_MS, OUT, ROOT, BenchError, log, utc_now
from converge import phase_converge
from gunicorn_configs import Gunicorn
from https_client import Session
from load_phases import LoadPhases
from loads import Loads
from machine import machine
from playbooks import Playbooks
from report import render
from targets import targets
from unit_memory import UnitMemory


class Bench:
    """The parts of one `make bench` run, wired to the containers and to one record."""

    def __init__(self, args):
        self.opts = args
        self.stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        self.run_dir = OUT / 'runs' / self.stamp
        self.found = {'cpu_n': None, 'nproc': None}
        self.record = {
            'started': utc_now(),
            'machine': {},
            'settings': {
                'connections': args.connections, 'threads': args.threads, 'duration_s': args.duration,
                'wrk_timeout_s': 10, 'warmup_s': args.warmup, 'repeats': args.repeats, 'reruns': args.reruns,
                'quiet_busy_pct': args.quiet_busy, 'quiet_wait_s': args.quiet_wait, 'quiet_budget_s': args.quiet_budget,
                'io_wait_ms': IO_WAIT_MS, 'cpu_target_ms': CPU_TARGET_MS, 'celery_batch': CELERY_BATCH,
                'celery_task_ms': CELERY_TASK_MS, 'host': args.host, 'client': args.client, 'host_ip': args.ip,
                'phases': args.phases, 'ssh_host': args.ssh_host,
            },
            'converge': {}, 'configurations': {}, 'loads': {}, 'celery': {}, 'memory': {}, 'targets': [], 'quiet': [],
        }
        self.host = Host(args.cli, args.host)
        self.web = Session(args.ip)
        self.playbooks = Playbooks(args, self.run_dir)
        self.gunicorn = Gunicorn(self.host, self.playbooks, args.ip, self.record['configurations'])
        self.memory = UnitMemory(self.host, None, self.record['memory'])
        self.loads = Loads(args, self.web, self.gunicorn, self.record)
        self.celery = CeleryRounds(args, self.host, self.web, self.record)
        self.load_phases = LoadPhases(self.gunicorn, self.memory, self.loads, self.celery,
                                      self.record['configurations'])

    def main(self, phases: list) -> int:
        """Every phase, then the record and the table, even after a failure (what was measured is kept)."""
        OUT.mkdir(parents=True, exist_ok=True)
        failed = None
        try:
            self.record['machine'], self.loads.cpu_sources, self.memory.cgroup_v2 = machine(self.opts, self.host)
            self.found['nproc'] = self.record['machine']['host_nproc']
            if 'converge' in phases:
                phase_converge(self.playbooks, self.host, self.record['converge'])
            if {'io', 'celery', 'defaults', 'cpu'} & set(phases):
                if not self.opts.client:
                    raise BenchError(f'phases {",".join(phases)} need the client container (--client)')
                self.found['cpu_n'] = calibrate_cpu(self.opts, self.web, self.record)
            if 'io' in phases:
                self.load_phases.io_plan(self.found['cpu_n'])
            if 'celery' in phases:
                self.celery.measure('plan')
            if 'defaults' in phases:
                self.load_phases.defaults()
            if 'cpu' in phases:
                self.load_phases.cpu_plan(self.found['cpu_n'], self.found['nproc'])
        except (BenchError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
            failed = f'{type(exc).__name__}: {exc}'
            log(f'FAILED: {failed}')
        finally:
            self._direct_stop_quietly()
            self.web.close()
        self.record['machine']['load_after'] = [round(x, 2) for x in os.getloadavg()]
        self.record['finished'] = utc_now()
        if failed:
            self.record['error'] = failed
        self.record['targets'] = targets(self.record)
        self.record['table'] = render(self.record)
        text = json.dumps(self.record, indent=2, sort_keys=True) + '\n'
        path = OUT / f'bench-{self.stamp}.json'
        path.write_text(text, encoding='utf-8')
        (OUT / 'latest.json').write_text(text, encoding='utf-8')
        print(self.record['table'])
        print(f'\nRecord: {path.relative_to(ROOT)} (and .cache/bench/latest.json); playbook output: {self.run_dir.relative_to(ROOT)}/')
        return 1 if failed else 0

    def _direct_stop_quietly(self) -> None:
        """direct_stop on the way out, whatever state the host is in."""
        try:
            self.gunicorn.direct_stop()
        except (BenchError, OSError, subprocess.TimeoutExpired):
            pass
