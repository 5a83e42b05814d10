# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one HTTPS client of the tests and of the bench (tools/bench): requests to nginx from outside the
web host, as a client comes, by the site's name (SNI and Host), the certificate not checked (self-signed).

One request on a new connection (https_get), a kept-alive session that reads JSON answers (Session, the
bench's), a steady load loop (Load). The standard library only: tools/bench imports this module alone.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time

from .stack import SITE_NAME


def _unchecked_context():
    """A TLS client context that does not check the server's certificate. Built once: it loads no CA
    store (ssl.create_default_context() parses the system's on each call, ~35 ms of CPU, which a load
    loop paid for every request)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


UNCHECKED_TLS = _unchecked_context()


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address with the site's name as SNI (nginx refuses a handshake for names it does not serve),
    certificate not checked (self-signed). Each connection makes a full handshake: no session is resumed."""

    def __init__(self, address: str, port: int = 443, timeout: float = 10, server_name: str = SITE_NAME):
        super().__init__(address, port, timeout=timeout, context=UNCHECKED_TLS)
        self.server_name = server_name
        self.tls = UNCHECKED_TLS

    def connect(self):
        """TCP to the address, TLS with the server name."""
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.server_name)


def https_get(port, path="/", timeout=10):
    """One request on a new connection, as a client would come: HTTPS to nginx
    through a published port, by the site's name; returns (status, body)."""
    # to 127.0.0.1, with the site's name as SNI
    conn = SNIConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": SITE_NAME})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Session:
    """Requests to one address on one kept-alive connection; answers decoded from JSON."""

    def __init__(self, address: str, port: int = 443, timeout: float = 30):
        self.address, self.port, self.timeout = address, port, timeout
        self.conn = None

    def request(self, method: str, path: str) -> tuple:
        """(status, decoded JSON body); once more on a new connection when the kept-alive one was closed."""
        try:
            status, body = self._exchange(method, path)
        except (OSError, http.client.HTTPException):
            status, body = self._exchange(method, path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"raw": body[:200].decode("utf-8", "replace")}

    def _exchange(self, method: str, path: str) -> tuple:
        """(status, body bytes) of one request on the kept-alive connection (made when there is none), dropped
        when it fails."""
        if self.conn is None:
            self.conn = SNIConnection(self.address, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, headers={"Host": SITE_NAME})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        """Drop the kept-alive connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """A steady, bounded loop of requests from the controller to web hosts'
    published HTTPS ports until stopped (at most `limit` seconds). Every answer
    is kept with its time, so a test can count what failed after a fault and
    how long until the service answered again."""

    def __init__(self, ports, path="/healthz", limit=900, pause=0.05):
        self.ports, self.path, self.limit, self.pause = list(ports), path, limit, pause
        self.stop = threading.Event()
        self.counts = {port: [0, 0] for port in self.ports}  # served, failed
        self.failures = []  # (port, time, status)
        self.timeline = []  # (time, ok)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            for port in self.ports:
                try:
                    status, _body = https_get(port, self.path)
                    ok = status == 200
                except (OSError, http.client.HTTPException) as error:
                    status, ok = repr(error), False
                now = time.monotonic()
                self.timeline.append((now, ok))
                self.counts[port][0 if ok else 1] += 1
                if not ok:
                    self.failures.append((port, round(now, 1), status))
            time.sleep(self.pause)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def wait_requests(self, count, timeout=60):
        """Wait until `count` more answers came in (the loop runs and is counted)."""
        target, deadline = len(self.timeline) + count, time.monotonic() + timeout
        while len(self.timeline) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.timeline) >= target, f"the load loop got {len(self.timeline)} answers, not {target}"

    def summary(self, since):
        """Requests answered and failed after `since`, and seconds from `since` until
        the first success after the last failure (0 when nothing failed)."""
        after = [(stamp, ok) for stamp, ok in self.timeline if stamp >= since]
        failed = [stamp for stamp, ok in after if not ok]
        recovery = 0.0
        if failed:
            back = [stamp for stamp, ok in after if ok and stamp > failed[-1]]
            recovery = round((back[0] if back else float("inf")) - since, 2)
        return {"requests": len(after), "failed_requests": len(failed), "recovery_s": recovery}


def https_request(port, method, path, timeout=30):
    """One request on a new connection (no retry: what nginx could not pass on fails); returns the status."""
    conn = SNIConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Host": SITE_NAME, "Content-Length": "0"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class MixedLoad:
    """`clients` parallel clients against web hosts' published HTTPS ports until stopped, each request
    on a new connection: slow GETs, POSTs that enqueue a Celery task (nginx never retries a POST on
    another connection) and health checks, in turn. Every answer is kept with its latency."""

    MIX = (("GET", "/io?ms=300", 200), ("POST", "/tasks/wait?ms=1&count=1", 202), ("GET", "/healthz", 200))

    def __init__(self, ports, clients, limit=900, timeout=30, pause=0.5, mix=MIX):
        self.ports, self.clients, self.limit, self.timeout, self.mix = list(ports), clients, limit, timeout, mix
        self.pause = pause
        self.stop = threading.Event()
        self.answers = []  # (start, latency, ok, port, method, path, status)
        self.threads = [threading.Thread(target=self._client, args=(index,), daemon=True) for index in range(clients)]

    def _client(self, index):
        deadline, turn = time.monotonic() + self.limit, index
        while not self.stop.is_set() and time.monotonic() < deadline:
            method, path, expected = self.mix[turn % len(self.mix)]
            port = self.ports[turn % len(self.ports)]
            turn += 1
            began = time.monotonic()
            try:
                status = https_request(port, method, path, self.timeout)
            except (OSError, http.client.HTTPException) as error:
                status = repr(error)
            self.answers.append((began, time.monotonic() - began, status == expected, port, method, path, status))
            self.stop.wait(self.pause)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def wait_requests(self, count, timeout=60):
        """Wait until `count` more answers came in."""
        target, deadline = len(self.answers) + count, time.monotonic() + timeout
        while len(self.answers) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.answers) >= target, f"the load got {len(self.answers)} answers, not {target}"

    def summary(self, since=0.0):
        """Requests sent after `since`: how many, how many failed (with the first failures), the longest wait."""
        after = [answer for answer in self.answers if answer[0] >= since]
        failed = [answer for answer in after if not answer[2]]
        return {"requests": len(after), "posts": sum(1 for answer in after if answer[4] == "POST"),
                "failed_requests": len(failed), "max_latency_s": round(max((a[1] for a in after), default=0.0), 2),
                "failures": [(a[4], a[5], a[6]) for a in failed[:10]]}
