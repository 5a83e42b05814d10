# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The wrk loads: each configuration's runs, through nginx over HTTPS or straight to a hand-started Gunicorn,
interleaved with the others of its group, each after a warm-up and a settle, with the CPU each one cost."""
from __future__ import annotations

import http.client
import os
import time

from commands import run
from common import DIRECT_PORT, log
from cpu_accounting import cpu_snapshot, cpu_split
from gunicorn_configs import Gunicorn
from https_client import SITE_NAME, Session
from quiet import wait_quiet
from wrk import aggregate, parse_wrk, wrk_argv


def nginx_url(path: str) -> str:
    """Through nginx over HTTPS, by the site's name (the client resolves it to the host)."""
    return f'https://{SITE_NAME}{path}'


class Loads:
    """The loads of one `make bench` run; each one's median is kept in the record's loads. `cpu_sources`: the
    containers' CPU time files by role (machine.machine)."""

    def __init__(self, opts, web: Session, gunicorn: Gunicorn, record: dict):
        self.opts, self.web, self.gunicorn, self.record = opts, web, gunicorn, record
        self.cpu_sources = {}

    def _settle(self, direct: bool) -> float:
        """Wait until /healthz answers within 100 ms: what an earlier run left queued is served first."""
        deadline = time.monotonic() + 30
        while True:
            start = time.monotonic()
            try:
                if direct:
                    conn = http.client.HTTPConnection(self.opts.ip, DIRECT_PORT, timeout=30)
                    conn.request('GET', '/healthz')
                    status = conn.getresponse().status
                    conn.close()
                else:
                    status, _body = self.web.request('GET', '/healthz')
            except (OSError, http.client.HTTPException):
                status = None
            took = time.monotonic() - start
            if (status == 200 and took < 0.1) or time.monotonic() > deadline:
                return round(took * 1000.0, 1)
            time.sleep(0.2)

    def _one_load(self, spec: dict) -> dict:
        """One measured wrk run of a spec (after a warm-up and the settle), starting the direct Gunicorn when it needs one."""
        direct = spec.get('direct')
        url = self.gunicorn.direct_url(spec['path']) if direct else nginx_url(spec['path'])
        if direct:
            self.gunicorn.direct_start(**direct)
        try:
            if self.opts.warmup:
                run(wrk_argv(self.opts, url, self.opts.warmup), timeout=self.opts.warmup + 90)
            settled_ms = self._settle(bool(direct))
            load_before = os.getloadavg()[0]
            before = cpu_snapshot(self.cpu_sources)
            proc = run(wrk_argv(self.opts, url, self.opts.duration), timeout=self.opts.duration + 90)
            after = cpu_snapshot(self.cpu_sources)
        finally:
            if direct:
                self.gunicorn.direct_stop()
        result = parse_wrk(proc.stdout)
        result.update(load1_before=round(load_before, 2), load1_after=round(os.getloadavg()[0], 2), settled_ms=settled_ms)
        result.update(cpu_split(before, after, result['requests']))
        log(f'  {spec["key"]}: {result["rps"]} req/s, p50 {result["p50_ms"]} ms, p99 {result["p99_ms"]} ms, '
            f'errors {result["errors"]}; machine {result["machine_busy_pct"]} % busy, '
            f'the bench got {result.get("bench_share_of_machine_pct")} % of it')
        return result

    def measure(self, specs: list) -> None:
        """Each spec `repeats` times, interleaved (A B C A B C): every configuration sees the same slices of whatever
        else the machine runs, and the median of its runs is kept."""
        runs = {spec['key']: [] for spec in specs}
        keys = ', '.join(spec['key'] for spec in specs)
        for index in range(self.opts.repeats):
            wait_quiet(self.opts, self.record['quiet'], f'round {index + 1} of {keys}')
            log(f'loads, round {index + 1} of {self.opts.repeats}: {keys}')
            for spec in specs:
                runs[spec['key']].append(self._one_load(spec))
        for spec in specs:
            result = aggregate(runs[spec['key']])
            result.update(label=spec['label'], configuration=spec['config'], via='direct' if spec.get('direct') else 'nginx',
                          url=self.gunicorn.direct_url(spec['path']) if spec.get('direct') else nginx_url(spec['path']))
            if spec.get('direct'):
                result['direct_settings'] = spec['direct']
            self.record['loads'][spec['key']] = result
            log(f'load {spec["key"]}: median {result["rps"]} req/s, p50 {result["p50_ms"]} ms, p99 {result["p99_ms"]} ms, '
                f'errors {result["errors"]}')
