# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The size of the CPU-bound request: the n of /cpu?n= that costs about CPU_TARGET_MS of CPU, measured one request
at a time over HTTPS."""
from __future__ import annotations

import statistics

from common import CPU_TARGET_MS, BenchError, log
from https_client import Session
from quiet import wait_quiet
from stats import percentile


def calibrate_cpu(opts, web: Session, record: dict) -> int:
    """Pick n so that one /cpu request is about CPU_TARGET_MS of CPU (its 20th percentile of elapsed_ms); the rounds
    go to the record's cpu_calibration. Returns n."""
    wait_quiet(opts, record['quiet'], 'calibration')
    n = 20000
    tried = []
    for _round in range(5):
        samples = []
        for _index in range(25):
            status, body = web.request('GET', f'/cpu?n={n}')
            if status != 200:
                raise BenchError(f'/cpu?n={n} answered {status}: {body}')
            samples.append(body['elapsed_ms'])
        low = percentile(samples, 20)
        tried.append({'n': n, 'p20_ms': low, 'median_ms': statistics.median(samples)})
        log(f'calibrate: n={n} p20 {low} ms, median {statistics.median(samples)} ms')
        if abs(low - CPU_TARGET_MS) / CPU_TARGET_MS <= 0.15:
            break
        # Trial division up to n costs about n^1.5 / ln n: scale by the 1.4th root.
        n = max(1000, min(5_000_000, int(n * (CPU_TARGET_MS / low) ** (1 / 1.4))))
    record['cpu_calibration'] = {'n': tried[-1]['n'], 'p20_ms': tried[-1]['p20_ms'],
                                 'median_ms': tried[-1]['median_ms'], 'rounds': tried}
    return tried[-1]['n']
