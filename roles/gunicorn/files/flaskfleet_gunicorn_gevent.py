# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Gevent workers: a keep-alive connection waiting for its next request ends when the worker stops.

A gevent worker told to stop closes its listener, then waits (up to
graceful_timeout) until every connection it holds has ended. A keep-alive
connection nginx keeps idle in its pool never ends by itself: Gunicorn's
keepalive is longer than nginx's so that Gunicorn never closes a connection
nginx is about to use. So a restart waited graceful_timeout whenever a worker
held one, with every new request queued on the socket meanwhile (measured:
30 s, requests timing out). Gthread workers drop their idle connections when
they stop; this does the same for gevent's. A connection waiting for its
first request, and every request in progress, are left to finish.

Gunicorn's config calls close_idle_at_stop(worker) from post_worker_init.
"""
import contextlib
import errno
import weakref

import gevent

POLL = 0.2  # seconds between looks at the worker's state


# What an idle wait ends with. Not gevent's GreenletExit: Gunicorn answers any
# other exception with a 500 written on the connection, and nginx could read
# that stray 500 as the answer to the next request it sends on it (seen under
# load: a GET answered 500 during a gevent -> sync restart). A reset
# connection is closed in silence, as when the peer goes away.
def _ended():
    return ConnectionResetError(errno.ECONNRESET, "idle keep-alive connection ended: the worker stops")


def close_idle_at_stop(worker, poll=POLL):
    """Wrap the worker's wait for a request and end the idle waits once it stops."""
    waits = weakref.WeakKeyDictionary()  # connection's greenlet -> waits for a request begun
    idle = weakref.WeakSet()  # greenlets waiting for a request after their first
    wait_for_request = worker.timeout_ctx

    @contextlib.contextmanager
    def timeout_ctx():
        current = gevent.getcurrent()
        waits[current] = waits.get(current, 0) + 1
        if waits[current] > 1:
            idle.add(current)
        try:
            with wait_for_request():
                yield
        finally:
            idle.discard(current)

    def end_idle_once_stopping():
        while worker.alive:
            gevent.sleep(poll)
        while True:  # until the worker exits: connections served meanwhile go idle too
            for greenlet in list(idle):
                greenlet.kill(exception=_ended(), block=False)
            gevent.sleep(poll)

    worker.timeout_ctx = timeout_ctx
    gevent.spawn(end_idle_once_stopping)
