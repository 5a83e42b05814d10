# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet-demo: a tiny Flask app used by the flaskfleet.stack collection.

WSGI entry point: ``flaskfleet_demo:app``.

The app deliberately does NOT apply werkzeug's ProxyFix itself; the
collection's generated wrapper module does that, so ``/whoami`` shows
exactly what the deployed stack makes Flask see.
"""

import os
import sys
import time

import click
from flask import Flask, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

__version__ = "1.0.0"
__all__ = ["create_app", "static_dir", "app", "__version__"]

# Settings read directly from os.environ (so a systemd EnvironmentFile works
# without the FLASK_ prefix).  Value = default.
SETTINGS = {
    "FLASKFLEET_DEMO_ENABLE_LEAK": False,
    "FLASKFLEET_DEMO_ENABLE_ENV_ECHO": False,
}
# Where `flask record-release` (a release command's stand-in) counts its runs
# and writes the venv of the last one, in the broker's Redis.
RELEASE_RUNS_KEY = "flaskfleet-demo:release-command-runs"
RELEASE_VENV_KEY = "flaskfleet-demo:release-command-venv"
# The only variables /env/<name> may show (tests of the deployed environment).
ENV_ECHO_PREFIX = "FLASKFLEET_DEMO_ECHO_"

_TRUE_STRINGS = frozenset({"1", "true", "yes"})

LIMITS = {
    "io_ms": (50, 0, 10_000),
    "task_ms": (1000, 0, 600_000),
    "task_count": (1, 1, 500),
    "cpu_n": (20_000, 1, 5_000_000),
    "leak_mb": (10, 1, 4096),
}

_PAGE = 4096
_MB = 1024 * 1024

# Module-level on purpose: memory appended here lives as long as the worker
# process (the classic leak of long-lived workers; see gunicorn max_requests).
_LEAKED = []


def static_dir():
    """Absolute path of the package's static directory."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def _truthy(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if value is None:
        return False
    return str(value).strip().lower() in _TRUE_STRINGS


def _rss_kb():
    """Current resident set size in kB from /proc/self/status, or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _count_primes(n):
    """Count primes below n by naive trial division (deliberately pure Python)."""
    if n < 3:
        return 0
    count = 1  # the prime 2
    for k in range(3, n, 2):
        d = 3
        while d * d <= k:
            if k % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


def _leak(mb):
    """Allocate mb MiB, write into every page so it is resident, keep it."""
    size = mb * _MB
    buf = bytearray(size)
    buf[::_PAGE] = b"\xa5" * len(range(0, size, _PAGE))
    _LEAKED.append(buf)
    return sum(len(b) for b in _LEAKED) // _MB


class _NoBroker(Exception):
    pass


class _BadParam(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def _int_arg(name, limit_key):
    default, low, high = LIMITS[limit_key]
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise _BadParam(f"'{name}' must be an integer in {low}..{high}") from None
    if not low <= value <= high:
        raise _BadParam(f"'{name}' must be in {low}..{high}, got {value}")
    return value


def create_app(test_config=None):
    """Application factory.

    Configuration precedence (lowest to highest): built-in defaults,
    ``FLASK_*`` environment variables (``app.config.from_prefixed_env()``),
    ``FLASKFLEET_DEMO_*`` environment variables, then ``test_config``.
    """
    app = Flask(__name__, static_folder=static_dir(), static_url_path="/static")
    app.config.from_mapping(SETTINGS)
    if hasattr(app.config, "from_prefixed_env"):  # Flask >= 2.1
        app.config.from_prefixed_env()
    for key in SETTINGS:
        if key in os.environ:
            app.config[key] = os.environ[key]
    if test_config:
        app.config.from_mapping(test_config)

    def leak_enabled():
        return _truthy(app.config.get("FLASKFLEET_DEMO_ENABLE_LEAK"))

    def env_echo_enabled():
        return _truthy(app.config.get("FLASKFLEET_DEMO_ENABLE_ENV_ECHO"))

    @app.errorhandler(_BadParam)
    def bad_param(exc):
        return jsonify(error=exc.message, status=400), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify(error=exc.name, status=exc.code), exc.code

    @app.get("/")
    def index():
        endpoints = {
            "/": "this index",
            "/healthz": "liveness: status and worker pid",
            "/whoami": "what Flask sees (remote_addr, scheme, host, ...)",
            "/io?ms=N": "sleep N ms (default 50, 0..10000)",
            "/cpu?n=N": "count primes below N (default 20000, 1..5000000)",
            "/static/hello.txt": "static file",
            "POST /tasks/wait?ms=N&count=K": "enqueue K Celery tasks that wait N ms (they return the worker's host)",
            "POST /tasks/burn?n=N&count=K": "enqueue K Celery tasks that count primes below N",
            "/tasks/<id>": "a task's state and result",
        }
        if leak_enabled():
            endpoints["/leak?mb=N"] = "leak N MiB per call (default 10, 1..4096)"
        if env_echo_enabled():
            endpoints[f"/env/{ENV_ECHO_PREFIX}NAME"] = "the value the app got for an environment variable (tests only)"
        return jsonify(
            name="flaskfleet-demo",
            version=__version__,
            endpoints=endpoints,
            pid=os.getpid(),
            # set when the app was made by create_app({...}) with this key
            factory_arg=app.config.get("FLASKFLEET_DEMO_FACTORY_ARG"),
        )

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", pid=os.getpid())

    @app.get("/whoami")
    def whoami():
        app.logger.info("whoami asked by %s", request.remote_addr)
        # Every header a framework might read as the client's address,
        # scheme or request id: what the proxy in front let through.
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower().startswith("x-")
            or k.lower() in ("host", "forwarded", "front-end-https", "client-ip", "true-client-ip", "cf-connecting-ip")
        }
        return jsonify(
            remote_addr=request.remote_addr,
            scheme=request.scheme,
            host=request.host,
            url_root=request.url_root,
            external_url=url_for("whoami", _external=True),
            is_secure=request.is_secure,
            pid=os.getpid(),
            headers=headers,
            debug=app.debug,
        )

    @app.get("/io")
    def io():
        ms = _int_arg("ms", "io_ms")
        # Blocking sleep: cooperative under gunicorn's gevent worker (monkeypatched).
        time.sleep(ms / 1000.0)
        return jsonify(slept_ms=ms, pid=os.getpid())

    @app.get("/cpu")
    def cpu():
        n = _int_arg("n", "cpu_n")
        start = time.perf_counter()
        primes = _count_primes(n)
        elapsed_ms = round((time.perf_counter() - start) * 1000.0, 3)
        return jsonify(n=n, primes_below_n=primes, elapsed_ms=elapsed_ms, pid=os.getpid())

    @app.get("/env/<name>")
    def env_echo(name):
        # Tests only: proves that settings and secrets reach the app byte for
        # byte. Off unless FLASKFLEET_DEMO_ENABLE_ENV_ECHO is set, and limited
        # to variables named for it.
        if not env_echo_enabled() or not name.startswith(ENV_ECHO_PREFIX):
            return jsonify(error="Not Found", status=404), 404
        if name not in os.environ:
            return jsonify(error="Not Found", status=404, name=name), 404
        return jsonify(name=name, value=os.environ[name], utf8_hex=os.environ[name].encode("utf-8", "surrogateescape").hex())

    # Celery: enqueue on the fleet's broker, read results back. 503 when the
    # deployment gave the app no broker (CELERY_BROKER_URL).
    def _tasks():
        if not os.environ.get("CELERY_BROKER_URL"):
            raise _NoBroker()
        from flaskfleet_demo import tasks  # pylint: disable=import-outside-toplevel
        return tasks

    @app.errorhandler(_NoBroker)
    def no_broker(_exc):
        return jsonify(error="no broker configured (CELERY_BROKER_URL)", status=503), 503

    def _enqueue(task, *args):
        count = _int_arg("count", "task_count")
        queue = request.args.get("queue") or None
        ids = [task.apply_async(args=args, queue=queue).id for _index in range(count)]
        return jsonify(task_ids=ids, count=count), 202

    @app.post("/tasks/wait")
    def task_wait():
        return _enqueue(_tasks().wait, _int_arg("ms", "task_ms"))

    @app.post("/tasks/burn")
    def task_burn():
        return _enqueue(_tasks().burn, _int_arg("n", "cpu_n"))

    @app.post("/tasks/leak")
    def task_leak():
        if not leak_enabled():
            return jsonify(error="Not Found", status=404), 404
        return _enqueue(_tasks().leak, _int_arg("mb", "leak_mb"))

    @app.get("/tasks/<task_id>")
    def task_result(task_id):
        tasks = _tasks()
        result = tasks.celery.AsyncResult(task_id)
        state = result.state
        value = result.result if state == "SUCCESS" else (repr(result.result) if result.result is not None else None)
        return jsonify(task_id=task_id, state=state, result=value)

    # A release command's stand-in (flask_app_release_command: flask record-release):
    # what a migration does once per deploy, seen from outside. It reaches the
    # broker with the app's environment, counts its runs there and writes the
    # venv it ran in; --fail fails as a broken migration would.
    @app.cli.command("record-release")
    @click.option("--fail", is_flag=True, help="Fail, as a broken migration would.")
    def record_release(fail):
        if fail:
            raise click.ClickException("record-release: failed, as asked (--fail)")
        client = _tasks().celery.backend.client
        runs = client.incr(RELEASE_RUNS_KEY)
        client.set(RELEASE_VENV_KEY, sys.prefix)
        click.echo(f"record-release: run {runs} in {sys.prefix}")

    @app.get("/leak")
    def leak():
        if not leak_enabled():
            return jsonify(error="Not Found", status=404), 404
        mb = _int_arg("mb", "leak_mb")
        try:
            total = _leak(mb)
        except MemoryError:
            return jsonify(error="MemoryError", status=503, pid=os.getpid()), 503
        return jsonify(
            leaked_mb=mb,
            leaked_mb_total=total,
            pid=os.getpid(),
            rss_kb=_rss_kb(),
        )

    return app


app = create_app()
