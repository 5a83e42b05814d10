# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The example fleet (examples/fleet) is input the roles accept: its six hosts, played
by the controller itself, go through flaskfleet.stack.plan (every role's argument spec
and plan) and through flaskfleet.stack.site's checks (--check: a host never converged
stops after them) without an error."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
# Loki's and Promtail's zips (the checks verify the pinned release's checksum; GitHub is not reachable here)
ARTIFACTS = os.environ.get("FLASKFLEET_ARTIFACTS") or str(ROOT.parent / "shared" / "artifacts")

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
    assert plan["redis1.example.com"]["redis"]["instances"][0]["maxmemory_mb"] == int(plan["redis1.example.com"]["memory_mb"] * 0.4)
    # Loki's cap comes from its share of the host's memory budget (its planned use, GOMEMLIMIT, is 75 % of the cap)
    logs = plan["logs1.example.com"]
    assert logs["loki"]["bound"] == "budget", logs["loki"]
    assert logs["loki"]["memory_max_mb"] == logs["budget"]["services"]["loki"]["planned_mb"] * 4 // 3, logs
    # and every role's checks accept it (the preflight play of the fleet playbook), with
    # the demo app in place of the example's checkout of "shop" and a pair made here for its certificate
    crt, key = tmp_path / "shop.crt", tmp_path / "shop.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=shop.example.com",
                    "-addext", "subjectAltName=DNS:shop.example.com", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    app = {"flask_app_source_dir": str(ROOT / "demo" / "app"),
           "flask_app_static_src": str(ROOT / "demo" / "app" / "src" / "flaskfleet_demo" / "static"),
           "nginx_tls_certificate_src": str(crt), "nginx_tls_key_src": str(key)}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "examples/fleet", "--check", "playbooks/site.yml", "-e",
                           json.dumps({**local, **app, "loki_artifact_dir": ARTIFACTS, "promtail_artifact_dir": ARTIFACTS})],
                          env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (proc.stdout.count("check mode stops here") == len(plan)), proc.stdout[-3000:]
