# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The load phases: which Gunicorn configurations each one converges or starts and loads (the I/O plan, Gunicorn's
defaults with Celery at concurrency 1, the CPU plan beside every direct configuration), with the unit's memory."""
from __future__ import annotations

from celery_tasks import CeleryRounds
from common import IO_WAIT_MS
from gunicorn_configs import Gunicorn, describe
from loads import Loads
from unit_memory import UnitMemory


class LoadPhases:
    """The phases after the converge; `configurations` is the record's part of them."""

    def __init__(self, gunicorn: Gunicorn, memory: UnitMemory, loads: Loads, celery: CeleryRounds,
                 configurations: dict):
        self.gunicorn, self.memory, self.loads, self.celery = gunicorn, memory, loads, celery
        self.configurations = configurations

    def io_plan(self, cpu_n: int) -> None:
        """The plan for the I/O-bound app is live: its I/O numbers through nginx and straight to Gunicorn, and the trap
        (the same gevent workers on CPU work)."""
        config = self.gunicorn.config()
        self.configurations.setdefault('io-plan', {'extra_vars': {}, 'gunicorn': config})
        name = describe(config)
        same = {'worker_class': config['worker_class'], 'workers': config['workers'], 'threads': config['threads'] or 1}
        begun = self.memory.begin()
        self.loads.measure([
            {'key': 'io_plan_nginx', 'label': 'plan (gunicorn_workload: io)', 'path': f'/io?ms={IO_WAIT_MS}', 'config': name},
            {'key': 'io_plan_direct', 'label': 'plan (gunicorn_workload: io)', 'path': f'/io?ms={IO_WAIT_MS}', 'config': name,
             'direct': same},
            {'key': 'cpu_io_plan_nginx', 'label': 'wrong workload declared: io (gevent) on CPU work',
             'path': f'/cpu?n={cpu_n}', 'config': name},
        ])
        self.memory.end('io-plan', begun)

    def defaults(self) -> None:
        """Gunicorn's defaults (one sync worker) and Celery at concurrency 1, in one converge."""
        config = self.gunicorn.converge('defaults', {'gunicorn_worker_class': 'sync', 'gunicorn_workers': 1},
                                        also_celery={'celery_concurrency': 1})
        self.celery.measure('concurrency-1')
        begun = self.memory.begin()
        self.loads.measure([{'key': 'io_defaults_nginx', 'label': "Gunicorn's defaults", 'path': f'/io?ms={IO_WAIT_MS}',
                             'config': describe(config)}])
        self.memory.end('defaults', begun)

    def cpu_plan(self, cpu_n: int, nproc: int) -> None:
        """The plan for the CPU-bound app through nginx, beside every direct configuration worth trying (the best
        one is the yardstick). The cpu plan is 2 x vCPUs + 1 sync workers on most hosts: then it is also the
        I/O table's 2n+1 row; otherwise that one gets its own converge."""
        config = self.gunicorn.converge('cpu-plan', {'gunicorn_workload': 'cpu'})
        n = nproc
        same = config['worker_class'] == 'sync' and config['workers'] == 2 * n + 1
        self.configurations['cpu-plan']['same_as_2n1_sync'] = same
        cpu = f'/cpu?n={cpu_n}'
        # Straight to Gunicorn as configured by hand: no worker recycling (Gunicorn's default max_requests 0).
        specs = [{'key': 'cpu_plan_nginx', 'label': 'plan (gunicorn_workload: cpu)', 'path': cpu, 'config': describe(config)}]
        if same:
            specs.append({'key': 'io_sync2n1_nginx', 'label': '2 x vCPUs + 1 sync (the cpu plan here)',
                          'path': f'/io?ms={IO_WAIT_MS}', 'config': describe(config)})
        for key, label, worker_class, workers, threads in (
                ('cpu_direct_sync1', "Gunicorn's defaults", 'sync', 1, 1),
                ('cpu_direct_syncn', 'one sync worker per vCPU', 'sync', n, 1),
                ('cpu_direct_sync2n1', '2 x vCPUs + 1 sync', 'sync', 2 * n + 1, 1),
                ('cpu_direct_gthread', 'gthread, vCPUs + 1 workers x 4 threads', 'gthread', n + 1, 4),
                ('cpu_direct_gevent', 'gevent, one worker per vCPU', 'gevent', n, 1)):
            name = f'{workers} {worker_class}' + (f' x {threads} threads' if worker_class == 'gthread' else '')
            specs.append({'key': key, 'label': label, 'path': cpu, 'config': name,
                          'direct': {'worker_class': worker_class, 'workers': workers, 'threads': threads, 'max_requests': 0}})
        begun = self.memory.begin()
        self.loads.measure(specs)
        self.memory.end('cpu-plan', begun)
        if not same:
            config = self.gunicorn.converge('sync-2n1',
                                            {'gunicorn_worker_class': 'sync', 'gunicorn_workers': 2 * n + 1})
            begun = self.memory.begin()
            self.loads.measure([{'key': 'io_sync2n1_nginx', 'label': '2 x vCPUs + 1 sync',
                                 'path': f'/io?ms={IO_WAIT_MS}', 'config': describe(config)}])
            self.memory.end('sync-2n1', begun)
