# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A read-only look at one host of a flaskfleet fleet, printed as JSON.

Run by the flaskfleet.stack.diagnose playbook (argument: its settings as JSON).
Reads service states and restart counts, memory against each unit's caps, OOM
kills, recent errors from the journal, `nginx -t`, Redis queue lengths, and a
py-spy dump of every Gunicorn and Celery worker; then names the likely trap.
Standard library only; changes nothing.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import re
import subprocess
import sys

SETTINGS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
SINCE = SETTINGS.get("since", "1 hour ago")
PY_SPY = SETTINGS.get("py_spy", "")
QUEUE_WARN = int(SETTINGS.get("queue_warn", 100))
MEMORY_WARN = float(SETTINGS.get("memory_warn", 0.8))
RESTART_WARN = int(SETTINGS.get("restart_warn", 3))
CERT_WARN_DAYS = float(SETTINGS.get("certificate_warn_days", 14))
UNIT_PATTERNS = ("gunicorn-*", "celery-*", "nginx.service", "redis-server@*", "loki.service", "promtail.service",
                 "supervisor.service")
# A frame of Flask handling a request: the frames below it are the app's.
REQUEST_FRAME = re.compile(r"\b(full_dispatch_request|dispatch_request)\b")
FRAME = re.compile(r"^\s+(\S+) \(([^)]*)\)")


def run(argv, timeout=60, env=None):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=dict(os.environ, **(env or {})))
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, "", str(error)
    return proc.returncode, proc.stdout, proc.stderr


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def oom_kills(pid):
    """OOM kills counted by the kernel for the cgroup of a process (v1 or v2)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        candidates = []
        if "memory" in controllers.split(","):
            candidates.append(f"/sys/fs/cgroup/memory{path}/memory.oom_control")
        if line.startswith("0::"):
            candidates.append(f"/sys/fs/cgroup{path}/memory.events")
        for name in candidates:
            try:
                with open(name, encoding="utf-8") as handle:
                    for entry in handle:
                        key, _sep, value = entry.partition(" ")
                        if key == "oom_kill":
                            return int(value)
            except OSError:
                continue
    return None


def units():
    code, out, _err = run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--type=service", *UNIT_PATTERNS])
    names = [line.split()[0] for line in out.splitlines() if line.strip()] if code == 0 else []
    found = {}
    for name in names:
        _code, show, _err = run(["systemctl", "show", name, "-p",
                                 "ActiveState,SubState,Result,NRestarts,MainPID,MemoryCurrent,MemoryHigh,MemoryMax,LoadState"])
        props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
        if props.get("LoadState") == "not-found":
            continue
        pid = _int(props.get("MainPID")) or 0
        unit = {
            "state": f"{props.get('ActiveState')}/{props.get('SubState')}",
            "result": props.get("Result"),
            "restarts": _int(props.get("NRestarts")),
            "main_pid": pid,
            "memory_current_mb": _mb(props.get("MemoryCurrent")),
            "memory_high_mb": _mb(props.get("MemoryHigh")),
            "memory_max_mb": _mb(props.get("MemoryMax")),
            "oom_kills": oom_kills(pid) if pid else None,
        }
        found[name.removesuffix(".service")] = unit
    return found


def _mb(value):
    number = _int(value)
    # systemd says infinity, or 2^64-1 for "no value"
    return None if number is None or number >= 2**62 else number // (1024 * 1024)


def supervisord_programs():
    code, out, _err = run(["supervisorctl", "status"])
    if code == 127 or not out:
        return {}
    programs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pid = re.search(r"\bpid (\d+)", line)
            programs[parts[0]] = {"state": parts[1], "pid": int(pid.group(1)) if pid else 0, "line": line.strip()}
    return programs


def journal_errors():
    _code, out, _err = run(["journalctl", "-p", "err", "-S", SINCE, "-o", "short-iso", "--no-pager", "-n", "50"])
    lines = [line for line in out.splitlines() if line and not line.startswith("-- ")]
    _code, kernel, _err = run(["journalctl", "-k", "-S", SINCE, "-o", "short-iso", "--no-pager"])
    oom = [line for line in kernel.splitlines() if re.search(r"out of memory|oom-kill|Killed process", line, re.I)]
    return lines, oom


def nginx_test():
    code, out, err = run(["nginx", "-t"])
    if code == 127:
        return None
    return {"ok": code == 0, "output": (out + err).strip()}


# Where a web host's ACME certificates are: certbot's lineages (an owner, or a
# single host), and those a peer fetched from its owner; and the unit whose
# failure means the certificate is not kept fresh there.
CERT_SOURCES = (("/etc/letsencrypt/live", "certbot.service"),
                ("/var/lib/flaskfleet/nginx-acme", "flaskfleet-nginx-acme-pull.service"))


def _days_left(path):
    _code, out, _err = run(["openssl", "x509", "-in", path, "-noout", "-enddate"])
    end = out.strip().split("=", 1)[-1]
    try:
        ends = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return {"not_after": end, "days_left": None}
    left = (ends - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    return {"not_after": ends.isoformat(), "days_left": round(left, 1)}


def certificates():
    """Every ACME certificate on the host (certbot's lineages, or those fetched from an owner): days left,
    and whether the last run of the unit that keeps it fresh (certbot.service, started by certbot.timer;
    a peer's fetch unit) failed. None when the host has neither."""
    lineages, failed = {}, {}
    for live, unit in CERT_SOURCES:
        if not os.path.isdir(live):
            continue
        for name in sorted(os.listdir(live)):
            path = os.path.join(live, name, "cert.pem")
            if os.path.isfile(path):
                lineages[name] = _days_left(path)
        _code, result, _err = run(["systemctl", "show", "-P", "Result", unit])
        _code, state, _err = run(["systemctl", "is-failed", unit])
        if state.strip() == "failed":
            failed[unit] = result.strip()
    if not lineages and not failed:
        return None
    return {"lineages": lineages, "failed_units": failed}


def redis_queues():
    secret = "/etc/redis/flaskfleet-admin.secret"
    if not os.path.exists(secret):
        return None
    with open(secret, encoding="utf-8") as handle:
        password = handle.read().strip()
    queues = {}
    for conf in sorted(glob.glob("/etc/redis/redis-*.conf")):
        instance = re.sub(r"^redis-(.*)\.conf$", r"\1", os.path.basename(conf))
        if instance.endswith(".live") or "." in instance:
            continue
        with open(conf, encoding="utf-8") as handle:
            port = next((line.split()[1] for line in handle if line.startswith("port ")), None)
        if not port:
            continue
        base = ["redis-cli", "--no-auth-warning", "--user", "flaskfleet-admin", "-p", port]
        env = {"REDISCLI_AUTH": password}
        _code, keys, _err = run([*base, "--scan", "--type", "list"], env=env)
        for key in sorted(set(keys.split())):
            _code, length, _err = run([*base, "LLEN", key], env=env)
            if _int(length.strip()) is not None:
                queues[f"{instance}:{key}"] = int(length.strip())
    return queues


def children(pid):
    _code, out, _err = run(["pgrep", "-P", str(pid)])
    return [int(child) for child in out.split()]


def dump(pid):
    code, out, err = run([PY_SPY, "dump", "--pid", str(pid)], timeout=30)
    text = out if code == 0 else f"py-spy failed ({code}): {err.strip()}"
    threads, current, busy = [], None, []
    for line in text.splitlines():
        if line.startswith("Thread "):
            current = {"thread": line.strip(), "frames": []}
            threads.append(current)
            continue
        match = FRAME.match(line)
        if match and current is not None:
            current["frames"].append(f"{match.group(1)} ({match.group(2)})")
    for thread in threads:
        frames = thread["frames"]  # innermost first
        index = next((i for i, frame in enumerate(frames) if REQUEST_FRAME.search(frame)), None)
        if index:
            # the app's view function: the frame right above Flask's dispatch
            busy.append(frames[index - 1] if frames[index - 1:index] else frames[0])
    return {"pid": pid, "text": text, "in_request": busy}


def workers(services, programs):
    """py-spy dumps of every Gunicorn worker and Celery process, by service."""
    if not PY_SPY or not os.path.exists(PY_SPY):
        return {}
    result = {}
    mains = {name: unit["main_pid"] for name, unit in services.items()
             if name.startswith(("gunicorn-", "celery-")) and unit["main_pid"]}
    mains.update({name: program["pid"] for name, program in programs.items()
                  if name.startswith(("gunicorn-", "celery-")) and program["pid"]})
    for name, pid in sorted(mains.items()):
        pids = children(pid) if name.startswith("gunicorn-") else [pid, *children(pid)]
        result[name] = [dump(child) for child in pids]
    return result


def traps(report):
    found = []
    for name, dumps in report["py_spy"].items():
        if name.startswith("gunicorn-") and dumps and all(d["in_request"] for d in dumps):
            functions = sorted({frame for d in dumps for frame in d["in_request"]})
            found.append(f"{name}: workers all busy ({len(dumps)} of {len(dumps)} in a request: {', '.join(functions)})")
    for name, unit in report["services"].items():
        cap = unit["memory_high_mb"] or unit["memory_max_mb"]
        if cap and unit["memory_current_mb"] is not None and unit["memory_current_mb"] >= cap * MEMORY_WARN:
            found.append(f"{name}: memory creeping to the cap ({unit['memory_current_mb']} MB of {cap} MB)")
        if (unit["restarts"] or 0) >= RESTART_WARN or unit["state"].endswith("auto-restart"):
            found.append(f"{name}: restarts in a loop ({unit['restarts']} restarts, {unit['state']})")
        if unit["oom_kills"]:
            found.append(f"{name}: {unit['oom_kills']} OOM kill(s) in its cgroup")
    for queue, length in (report["redis_queues"] or {}).items():
        if length >= QUEUE_WARN:
            found.append(f"Redis {queue}: queue backing up ({length} messages)")
    if report["nginx"] and not report["nginx"]["ok"]:
        found.append("nginx: its configuration fails nginx -t")
    certs = report.get("certificates")
    if certs:
        for name, lineage in certs["lineages"].items():
            if lineage["days_left"] is not None and lineage["days_left"] < CERT_WARN_DAYS:
                found.append(f"certificate {name}: expires in {lineage['days_left']} days ({lineage['not_after']}): "
                             "its renewal is not happening")
        for unit, result in certs["failed_units"].items():
            found.append(f"{unit}: the last renewal failed ({result}): journalctl -u {unit} says why")
    return found


def main():
    services = units()
    programs = supervisord_programs()
    errors, oom = journal_errors()
    report = {
        "services": services,
        "supervisord": programs,
        "journal_errors": errors,
        "kernel_oom": oom,
        "nginx": nginx_test(),
        "redis_queues": redis_queues(),
        "certificates": certificates(),
    }
    report["py_spy"] = workers(services, programs)
    report["traps"] = traps(report)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
