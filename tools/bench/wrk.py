# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wrk: its command line in the client container, what one run printed, the median of a load's runs."""
from __future__ import annotations

import re
import statistics

from common import BenchError

_DURATION = re.compile(r'([0-9.]+)(us|ms|s|m|h)$')
_UNIT_MS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0, 'h': 3600000.0}


def wrk_argv(opts, url: str, seconds: int) -> list:
    """wrk in the client container, bounded by timeout(1) as well as by its duration."""
    return [opts.cli, 'exec', opts.client, 'timeout', str(seconds + 60), 'wrk', f'-t{opts.threads}',
            f'-c{opts.connections}', f'-d{seconds}s', '--timeout', '10s', '--latency', url]


def _ms(text: str) -> float:
    """A wrk duration (850.12us, 52.3ms, 1.2s, 2m) in milliseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise BenchError(f'wrk: cannot read the duration {text!r}')
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests, seconds, latency percentiles and errors from wrk --latency output."""
    result = {'non_2xx_3xx': 0, 'socket_errors': {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0}}
    done = re.search(r'(\d+) requests in ([0-9.]+\w+),', output)
    if not done:
        raise BenchError(f'wrk printed no summary:\n{output}')
    result['requests'] = int(done.group(1))
    result['seconds'] = round(_ms(done.group(2)) / 1000.0, 3)
    for pct in ('50', '75', '90', '99'):
        match = re.search(rf'^\s+{pct}(?:\.000)?%\s+(\S+)\s*$', output, re.MULTILINE)
        result[f'p{pct}_ms'] = round(_ms(match.group(1)), 2) if match else None
    latency = re.search(r'^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)', output, re.MULTILINE)
    result['max_ms'] = round(_ms(latency.group(3)), 2) if latency else None
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', output)
    if errors:
        result['socket_errors'] = dict(zip(('connect', 'read', 'write', 'timeout'), map(int, errors.groups())))
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', output)
    if bad:
        result['non_2xx_3xx'] = int(bad.group(1))
    rate = re.search(r'Requests/sec:\s+([0-9.]+)', output)
    result['wrk_requests_per_s'] = float(rate.group(1)) if rate else None
    result['errors'] = result['non_2xx_3xx'] + sum(result['socket_errors'].values())
    # Good answers per second: a 502 is not throughput.
    result['rps'] = round((result['requests'] - result['non_2xx_3xx']) / result['seconds'], 1) if result['seconds'] else 0.0
    return result


def aggregate(runs: list) -> dict:
    """The median of each rate and percentile over the runs of one load; errors and requests summed."""
    result = {'runs': runs, 'requests': sum(run['requests'] for run in runs), 'seconds': round(sum(run['seconds'] for run in runs), 2)}
    for field in ('rps', 'p50_ms', 'p75_ms', 'p90_ms', 'p99_ms', 'max_ms', 'machine_busy_pct', 'host_cpu_ms_per_request',
                  'client_cpu_ms_per_request', 'bench_share_of_machine_pct'):
        values = [run[field] for run in runs if run.get(field) is not None]
        result[field] = round(statistics.median(values), 2) if values else None
    result['non_2xx_3xx'] = sum(run['non_2xx_3xx'] for run in runs)
    result['socket_errors'] = {kind: sum(run['socket_errors'][kind] for run in runs) for kind in ('connect', 'read', 'write', 'timeout')}
    result['errors'] = result['non_2xx_3xx'] + sum(result['socket_errors'].values())
    return result
