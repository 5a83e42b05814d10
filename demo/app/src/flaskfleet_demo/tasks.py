# SPDX-License-Identifier: GPL-3.0-or-later
"""Celery tasks of the demo app: ``celery --app flaskfleet_demo.tasks:celery``.

The broker and the result backend come from the environment
(``CELERY_BROKER_URL``, ``CELERY_RESULT_BACKEND``); every other setting from
the deployment (``celery --config``). Nothing here touches ``celery.conf`` at
import time, so the deployment's settings module is read first.

Each run of a task logs ``flaskfleet-demo run <task id>`` first: a task
delivered twice shows twice in the worker's log. The task bodies do not use
Redis themselves, so a broker restart can delay them, not fail them.
"""

import os
import socket
import time

from celery import Celery
from celery.utils.log import get_task_logger

# The web side's helpers: the same work in a task as in a request.
from flaskfleet_demo import _count_primes, _leak, _rss_kb

celery = Celery("flaskfleet_demo")

TICKS_KEY = "flaskfleet-demo:beat-ticks"
logger = get_task_logger(__name__)


def _log_run(task):
    logger.info("flaskfleet-demo run %s", task.request.id)


def _where(task):
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "task_id": task.request.id,
    }


@celery.task(bind=True, name="flaskfleet_demo.wait")
def wait(self, ms):
    """Wait ms milliseconds (I/O-like work); returns where it ran."""
    _log_run(self)
    time.sleep(ms / 1000.0)
    return dict(_where(self), slept_ms=ms)


@celery.task(bind=True, name="flaskfleet_demo.burn")
def burn(self, n):
    """Count primes below n (CPU work); returns where it ran and how long it took."""
    _log_run(self)
    start = time.perf_counter()
    primes = _count_primes(n)
    return dict(_where(self), n=n, primes_below_n=primes,
                elapsed_ms=round((time.perf_counter() - start) * 1000.0, 3))


# A child the kernel kills for memory must not get the task again (it would
# be killed again, forever): this task is not redelivered when its child dies.
@celery.task(bind=True, name="flaskfleet_demo.leak", reject_on_worker_lost=False)
def leak(self, mb):
    """Keep mb MiB more in this pool child; returns the child's RSS."""
    _log_run(self)
    total = _leak(mb)
    return dict(_where(self), leaked_mb_total=total, rss_kb=_rss_kb())


@celery.task(bind=True, name="flaskfleet_demo.tick")
def tick(self):
    """beat's periodic task: counts ticks in Redis."""
    return int(self.app.backend.client.incr(TICKS_KEY))


@celery.on_after_configure.connect
def _schedule(sender, **_kwargs):
    sender.add_periodic_task(5.0, tick.s(), name="flaskfleet-demo tick every 5 s")
