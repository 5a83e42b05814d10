# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet.stack.diagnose on a web host whose every Gunicorn thread is stuck in a slow
request: the py-spy dumps name the request's function, and the summary names the trap.

Scenario default, on its first web host.
"""
from __future__ import annotations

import json
import re
import shlex

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run
from flaskfleet_testlib.engine import instance_host
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.stack import SITE_NAME, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd", reason="scenario default")

WEB = (group_hosts("flask_web") or [""])[0]
# More slow requests at once than the plan's workers x threads (3 x 4 here).
SLOW_CLIENTS = 16


@pytest.fixture
def stuck():
    host = instance_host(WEB)
    # Up to 5 min of stuck requests (stopped when the test ends): the diagnose run must still find
    # them after installing py-spy, which took longer than the 80 s of an earlier loop on a busy machine.
    loop = (f"for i in $(seq 1 30); do curl -sk -o /dev/null --resolve {SITE_NAME}:443:127.0.0.1"
            f" 'https://{SITE_NAME}/io?ms=10000'; done")
    for client in range(SLOW_CLIENTS):
        host.run(f"systemd-run --unit flaskfleet-slow-{client} --collect bash -c {shlex.quote(loop)}")
    yield host
    for client in range(SLOW_CLIENTS):
        host.run(f"systemctl stop flaskfleet-slow-{client}")


def test_diagnose_names_the_stuck_request_and_the_trap(stuck, tmp_path):
    state = "systemctl show -P MainPID gunicorn-app; readlink /srv/app/current; sha256sum /etc/flaskfleet/gunicorn-app.conf.py"
    before = stuck.check_output(state)
    proc = ansible_run(["ansible-playbook", "playbooks/diagnose.yml", "--limit", WEB,
                        "-e", json.dumps({"flaskfleet_diagnose_dir": str(tmp_path), "flaskfleet_diagnose_since": "10 min ago"})],
                       check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    # what the app depends on is as it was (py-spy went into a venv of its own)
    assert stuck.check_output(state) == before
    report = json.loads((tmp_path / f"{WEB}.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert report["services"]["gunicorn-app"]["state"] == "active/running", report["services"]
    assert report["services"]["nginx"]["state"] == "active/running", report["services"]
    assert report["nginx"]["ok"], report["nginx"]
    dumps = report["py_spy"]["gunicorn-app"]
    frames = [frame for dump in dumps for frame in dump["in_request"]]
    # the view function of /io, where every worker is stuck
    # (py-spy names it by its qualified name: create_app.<locals>.io)
    assert any(re.match(r"(.*\.)?io \(flaskfleet_demo/__init__\.py:\d+\)$", frame) for frame in frames), \
        [dump["text"][:2000] for dump in dumps]
    trap = next((t for t in summary[WEB] if "workers all busy" in t), None)
    assert trap and "io (" in trap, summary
    assert trap in output
    print(f"{WEB}: {trap}")
