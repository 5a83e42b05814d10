# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Celery through Redis on the live worker: the round trip of a short task enqueued and polled over HTTPS, and the
throughput of a batch, timed until the last task is stored in the result backend."""
from __future__ import annotations

import json
import re
import shlex
import statistics
import time

from commands import Host
from common import CELERY_BATCH, CELERY_TASK_MS, CELERY_UNIT, ENV_FILE, LATENCY_SAMPLES, VENV, BenchError, log
from https_client import Session
from quiet import wait_quiet
from stats import percentile

# Run inside the host with the release venv: wait for a batch of tasks
# through the result backend and print each one's state and date_done.
_CELERY_WAIT = r'''
import datetime, json, os, re, sys, time
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        line = line.rstrip("\n")
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        os.environ[key] = value
from flaskfleet_demo.tasks import celery
ids = json.load(sys.stdin)
deadline = time.time() + float(sys.argv[2])
done = {}
while len(done) < len(ids) and time.time() < deadline:
    for task_id in ids:
        if task_id in done:
            continue
        result = celery.AsyncResult(task_id)
        if result.state in ("SUCCESS", "FAILURE", "REVOKED"):
            when = result.date_done
            if isinstance(when, str):
                when = datetime.datetime.fromisoformat(when)
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            done[task_id] = [result.state, when.timestamp() if when else None]
    time.sleep(0.2)
print(json.dumps(done))
'''


class CeleryRounds:
    """Rounds of the live Celery worker; each round's result is kept in `celery`, the record's part of them."""

    def __init__(self, opts, host: Host, web: Session, record: dict):
        self.opts, self.host, self.web, self.record = opts, host, web, record

    def measure(self, label: str) -> dict:
        """The live Celery worker: the round trip of a short task, then a batch's throughput."""
        concurrency = self._concurrency()
        wait_quiet(self.opts, self.record['quiet'], f'celery {label}')
        latencies = [self._round_trip() for _index in range(LATENCY_SAMPLES)]
        span, enqueued = self._batch(label)
        result = {
            'concurrency': concurrency,
            'batch': CELERY_BATCH, 'task_ms': CELERY_TASK_MS,
            'batch_seconds': round(span, 2), 'tasks_per_s': round(CELERY_BATCH / span, 1),
            'enqueue_seconds': round(enqueued, 2),
            'ideal_tasks_per_s': round(concurrency * 1000.0 / CELERY_TASK_MS, 1),
            'latency_ms': {'p50': round(statistics.median(latencies), 1), 'p90': round(percentile(latencies, 90), 1),
                           'max': round(max(latencies), 1), 'samples': LATENCY_SAMPLES},
        }
        self.record['celery'][label] = result
        log(f'celery {label}: concurrency {concurrency}, {result["tasks_per_s"]} tasks/s, '
            f'round trip p50 {result["latency_ms"]["p50"]} ms')
        return result

    def _round_trip(self) -> float:
        """Milliseconds from enqueueing a 0 ms task over HTTPS to reading its SUCCESS over HTTPS (polled every 5 ms)."""
        start = time.monotonic()
        status, body = self.web.request('POST', '/tasks/wait?ms=0')
        if status != 202:
            raise BenchError(f'POST /tasks/wait answered {status}: {body}')
        task_id = body['task_ids'][0]
        while True:
            status, body = self.web.request('GET', f'/tasks/{task_id}')
            if body.get('state') == 'SUCCESS':
                return (time.monotonic() - start) * 1000.0
            if body.get('state') in ('FAILURE', 'REVOKED') or time.monotonic() - start > 60:
                raise BenchError(f'task {task_id}: {body}')
            time.sleep(0.005)

    def _batch(self, label: str) -> tuple:
        """(seconds from the enqueueing request to the last task's date_done, seconds the request took) for a batch
        enqueued over HTTPS in one request; the results are read from the result backend on the host."""
        start = time.time()
        status, body = self.web.request('POST', f'/tasks/wait?ms={CELERY_TASK_MS}&count={CELERY_BATCH}')
        if status != 202:
            raise BenchError(f'POST /tasks/wait (batch) answered {status}: {body}')
        enqueued = time.time() - start
        out = self.host.shell(f'{VENV}/bin/python -c {shlex.quote(_CELERY_WAIT)} {ENV_FILE} 300',
                              timeout=400, stdin=json.dumps(body['task_ids']))
        done = json.loads(out.splitlines()[-1])
        finished = [when for state, when in done.values() if state == 'SUCCESS' and when]
        if len(finished) < CELERY_BATCH:
            raise BenchError(f'celery {label}: {len(finished)} of {CELERY_BATCH} tasks succeeded')
        return max(finished) - start, enqueued

    def _concurrency(self) -> int:
        """The live worker's --concurrency, from its unit."""
        exec_start = self.host.shell(f'systemctl show -P ExecStart {CELERY_UNIT}')
        match = re.search(r'--concurrency (\d+)', exec_start)
        if not match:
            raise BenchError(f'no --concurrency in {CELERY_UNIT}: {exec_start}')
        return int(match.group(1))
