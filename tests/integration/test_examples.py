# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The example fleet (examples/fleet) is input the roles accept: its six hosts, played
by the controller itself, go through flaskfleet.stack.plan (every role's argument spec
and plan) without an error."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not pathlib.Path("/etc/debian_version").exists(),
                                reason="the roles' plans read Debian facts: run on a Debian controller")


def test_the_example_fleet_plans_on_every_host(tmp_path):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_RETRY_FILES_ENABLED="0")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
             "vault_redis_app_password": "example-only-not-a-real-password", "flaskfleet_plan_file": str(tmp_path / "plan.json")}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "examples/fleet", "playbooks/plan.yml", "-e", json.dumps(local)],
                          env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert sorted(plan) == ["logs1.example.com", "redis1.example.com", "web1.example.com", "web2.example.com",
                            "worker1.example.com", "worker2.example.com"]
    assert plan["web1.example.com"]["gunicorn"]["workload"] == "mixed"
    assert plan["worker1.example.com"]["celery"]["workload"] == "io"
    assert plan["redis1.example.com"]["redis"]["instances"][0]["maxmemory_mb"] == plan["redis1.example.com"]["memory_mb"] // 2
    assert plan["logs1.example.com"]["loki"]["bound"] == "memory"
