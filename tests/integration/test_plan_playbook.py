# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet.stack.plan against the controller as a whole single-host fleet: the
table and the JSON, the bound that decided each number, the warning of a host too
small for what it is asked, and no change. No container needed: what the plan
shows against what the roles configure is tested in Molecule
(molecule/resources/tests/test_plan.py).
"""
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


def _plan(inventory, path, extra=None):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/plan.yml",
                           "-e", json.dumps({"flaskfleet_plan_file": str(path), **(extra or {})})],
                          env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(path.read_text())["controller"], proc.stdout


def test_plan_shows_each_role_with_its_bound_and_changes_nothing(inventory, tmp_path):
    plan, out = _plan(inventory, tmp_path / "plan.json")
    assert "changed=0" in out and "failed=0" in out, out[-3000:]
    assert plan["memory_mb"] > 0 and plan["cpus"] >= 1, plan
    gunicorn, celery, loki = plan["gunicorn"], plan["celery"], plan["loki"]
    [broker] = plan["redis"]["instances"]
    # each number with what decided it, as the filter and the roles' variables say
    assert gunicorn["bound"] in {"cpu", "memory", "min", "max"}, gunicorn
    assert gunicorn["workers"] == {"cpu": gunicorn["cpu_bound"], "memory": gunicorn["memory_bound"]}.get(
        gunicorn["bound"], gunicorn["workers"])
    assert celery["bound"] in {"cpu", "memory", "min", "max"}, celery
    assert broker["bound"] == "memory" and broker["maxmemory_mb"] == int(plan["memory_mb"] * 0.25), broker
    assert broker["memory_max_mb"] == int(broker["maxmemory_mb"] * 2 + 64), broker
    assert loki["memory_max_mb"] == max(512, int(plan["memory_mb"] * 0.25)), loki
    assert plan["memory_max_total_mb"] == (gunicorn["memory_max_mb"] + celery["memory_max_mb"]
                                           + broker["memory_max_mb"] + loki["memory_max_mb"])
    assert plan["warnings"] == [], plan["warnings"]
    for line in (f"{gunicorn['workers']} {gunicorn['worker_class']} workers", f"concurrency {celery['concurrency']} (",
                 f"broker maxmemory {broker['maxmemory_mb']} MB", f"MemoryHigh/Max {loki['memory_high_mb']}/{loki['memory_max_mb']} MB"):
        assert line in out, (line, out[-3000:])


def test_given_values_are_named_as_the_bound(inventory, tmp_path):
    given = {"gunicorn_workers": 5, "celery_concurrency": 3, "redis_broker_maxmemory_mb": 300, "loki_memory_max_mb": 700}
    plan, _out = _plan(inventory, tmp_path / "plan.json", given)
    assert (plan["gunicorn"]["workers"], plan["gunicorn"]["bound"]) == (5, "gunicorn_workers")
    assert (plan["celery"]["concurrency"], plan["celery"]["bound"]) == (3, "celery_concurrency")
    assert plan["redis"]["instances"][0]["bound"] == "redis_broker_maxmemory_mb"
    assert plan["redis"]["instances"][0]["memory_max_mb"] == 664
    assert (plan["loki"]["memory_max_mb"], plan["loki"]["bound"]) == (700, "loki_memory_max_mb")


def test_a_host_too_small_for_its_plan_is_warned_about(inventory, tmp_path):
    memory_mb = _plan(inventory, tmp_path / "plain.json")[0]["memory_mb"]
    # workers of more than half the host each, and at least two of them
    too_big = {"gunicorn_worker_memory_mb": memory_mb * 2 // 3, "gunicorn_min_workers": 2}
    plan, out = _plan(inventory, tmp_path / "plan.json", too_big)
    assert plan["gunicorn"]["bound"] == "min" and plan["gunicorn"]["memory_bound"] < 2, plan["gunicorn"]
    assert any(w.startswith("Gunicorn: the memory holds ") and "too small" in w for w in plan["warnings"]), plan["warnings"]
    assert any(w.startswith("the memory caps add up to ") for w in plan["warnings"]), plan["warnings"]
    assert "WARNING controller: Gunicorn: the memory holds" in out, out[-3000:]
