# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One variable moves Gunicorn between supervisord and systemd, both ways, under load."""
from __future__ import annotations

import json
import time

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run, changed_tasks
from flaskfleet_testlib.service import healthz_ok, main_pid, masters, wait_for
from flaskfleet_testlib.stack import SERVICE, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "supervisord", reason="the switch starts from supervisord (scenario supervisord)")

# One request every ~50 ms, each line "<sent> <answered> <HTTP status>" (epoch seconds).
LOAD = """for i in $(seq 1 6000); do
  [ -e /tmp/stop-load ] && break
  start=$(date +%s.%N)
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 \\
    --resolve app.example.test:443:127.0.0.1 https://app.example.test/healthz)
  echo "$start $(date +%s.%N) $code"
  sleep 0.05
done > /tmp/load-codes.txt 2>&1
"""
SWITCHES = 2
# Gunicorn unlinks its socket when it stops, so the new master binds after
# the old one is gone: errors are allowed only in that one gap per switch.
# How long the gap lasts is printed, not asserted (a timing claim belongs in
# the benchmark: here it depends on the machine's load).


def _error_windows(lines, join_seconds=1.0):
    """[start, end, count] of failed requests, failures less than join_seconds apart in one window.

    While one master stops and the next binds, a request may still slip
    through to either: such a window is one restart, not two. Each request
    spans its start to its answer (one that waited in a closing listener's
    backlog fails seconds after it was sent).
    """
    windows = []
    for line in lines:
        start, end, code = (line.split(" ", 2) + ["", ""])[:3]
        if code == "200":
            continue
        began, answered = float(start), float(end)
        if windows and began - windows[-1][1] < join_seconds:
            windows[-1][1] = max(windows[-1][1], answered)
            windows[-1][2] += 1
        else:
            windows.append([began, answered, 1])
    return windows


def _converge(instance, backend, *options):
    proc = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", instance,
                        "-e", json.dumps({"gunicorn_supervisor": backend}), *options], check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def _exactly_one_gunicorn_under(host, backend):
    wait_for(lambda: len(masters(host)) == 1, 20)  # the old master finishes its graceful stop
    assert masters(host) == [main_pid(host, backend)], f"expected one master under {backend}"
    other = "supervisord" if backend == "systemd" else "systemd"
    assert main_pid(host, other) == "0"
    assert healthz_ok(host)
    assert host.file("/run/gunicorn-app-proxy/gunicorn.sock").is_socket


def test_switch_backends_both_ways_under_load(instance, host):
    host.run("rm -f /tmp/stop-load /tmp/load-codes.txt")
    host.run(f"cat > /tmp/load.sh <<'EOF'\n{LOAD}EOF")
    host.run("systemd-run --unit flaskfleet-load --collect bash /tmp/load.sh")
    marks = []
    try:
        # the other backend's definition of the service is gone after the switch
        for backend, gone in (("systemd", f"/etc/supervisor/conf.d/{SERVICE}.conf"),
                              ("supervisord", f"/etc/systemd/system/{SERVICE}.service")):
            marks.append((backend, float(host.check_output("date +%s.%N"))))
            # The gunicorn role, whose switch it is (the checks of every role run
            # too); the first also puts the scenario's own release back after
            # test_deploy. The idempotence check below runs the whole play.
            _converge(instance, backend, "--tags", "flask_app,gunicorn" if backend == "systemd" else "gunicorn")
            _exactly_one_gunicorn_under(host, backend)
            assert not host.file(gone).exists
    finally:
        host.run("touch /tmp/stop-load")
        time.sleep(1)
    lines = host.file("/tmp/load-codes.txt").content_string.splitlines()
    windows = _error_windows(lines)
    failed = sum(count for _start, _end, count in windows)
    gaps = [round(end - start, 2) for start, end, _count in windows]
    origin = float(lines[0].split()[0])
    print(f"backend switch under load: {len(lines)} requests, {failed} failed, in {len(windows)} gap(s) of {gaps} s;"
          f" gaps start at {[round(start - origin, 1) for start, _end, _count in windows]} s,"
          f" switches at {[(backend, round(mark - origin, 1)) for backend, mark in marks]} s")
    assert len(lines) > 100
    assert len(windows) <= SWITCHES, windows


def test_converge_after_the_switch_is_idempotent(instance):
    out = _converge(instance, "supervisord")
    assert "changed=0" in out, changed_tasks(out)
