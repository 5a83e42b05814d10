# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The app's service seen from inside a host: its Gunicorn processes, its answers through the host's own
nginx, and waiting until a condition holds."""
from __future__ import annotations

import json
import shlex
import time

from .stack import SERVICE, SITE_NAME, SUPERVISOR


def main_pid(host, backend=None):
    """PID of the Gunicorn master under the given (default: the scenario's) backend, '0' if none."""
    if (backend or SUPERVISOR) == "systemd":
        return host.check_output(f"systemctl show -P MainPID {SERVICE}")
    out = host.run(f"supervisorctl pid {SERVICE}").stdout.strip()
    return out if out.isdigit() else "0"


def supervise_registry(host):
    """The supervise role's registry on the host: its services (backend, files, health) and pending actions."""
    return json.loads(host.check_output("cat /var/lib/flaskfleet/supervise.json"))


def gunicorn_workers(host):
    """PIDs of the Gunicorn master's workers: none while no master runs, or while a new one has not forked
    yet (a supervisor's restart is caught in between when polled)."""
    master = main_pid(host)
    if master == "0":
        return []
    found = host.run(f"pgrep -P {master}")
    assert found.rc in (0, 1), f"pgrep -P {master}: {found.stderr}"
    return found.stdout.split()


def masters(host):
    """PIDs of every Gunicorn master process on the host, whoever supervises it."""
    out = host.run("pgrep -f '^/srv/app/current/venv/bin/python /srv/app/current/venv/bin/gunicorn'").stdout.split()
    parents = {pid: host.check_output(f"ps -o ppid= -p {pid}").strip() for pid in out}
    return sorted(pid for pid, ppid in parents.items() if ppid not in parents)


def curl_in(host, path, *options, scheme="https", name=SITE_NAME):
    """curl run inside the host against its own nginx, by name."""
    port = 443 if scheme == "https" else 80
    opts = " ".join(options)
    return host.run(f"curl -sS -k --max-time 20 --resolve {name}:{port}:127.0.0.1 {opts} " + shlex.quote(f"{scheme}://{name}{path}"))


def healthz_ok(host):
    """Whether the app answers 200 on /healthz through the host's own nginx."""
    return curl_in(host, "/healthz", "-o /dev/null", "-w '%{http_code}'").stdout == "200"


def wait_for(condition, timeout=60, every=0.25):
    """Seconds until condition() held (polled), or None when it never did within timeout."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return round(time.monotonic() - began, 2)
        time.sleep(every)
    return None


def redis_admin(redis, command):
    """redis-cli as this collection's admin user, on the broker's unix socket of the Redis host redis."""
    return redis.check_output("REDISCLI_AUTH=$(cat /etc/redis/flaskfleet-admin.secret) redis-cli --user flaskfleet-admin"
                              f" -s /run/redis-broker/redis-server.sock {command}")
