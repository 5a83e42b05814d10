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
    # the host is large: every service got what it asked of the budget, and Redis and Loki take theirs
    budget = plan["budget"]
    assert budget["within_limit"] and not any(s["shrunk"] for s in budget["services"].values()), budget
    assert broker["bound"] == "budget" and broker["maxmemory_mb"] == int(plan["memory_mb"] * 0.25), broker
    assert broker["memory_max_mb"] == int(broker["maxmemory_mb"] * 2 + 64), broker
    assert loki["bound"] == "budget" and loki["memory_max_mb"] == budget["services"]["loki"]["planned_mb"] * 4 // 3, loki
    caps = [gunicorn["memory_max_mb"], broker["memory_max_mb"], loki["memory_max_mb"], celery["beat"]["memory_max_mb"],
            *(worker["memory_max_mb"] for worker in celery["workers"].values())]
    assert plan["memory_max_total_mb"] == sum(caps) + 256, (caps, plan["memory_max_total_mb"])
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
    # the budget gives Gunicorn its minimum, and says the host cannot hold it
    assert plan["gunicorn"]["workers"] == 2 and plan["budget"]["services"]["gunicorn-app"]["count"] == 2, plan["gunicorn"]
    assert not plan["budget"]["within_limit"] and plan["budget"]["planned_mb"] > memory_mb, plan["budget"]
    [warning] = plan["warnings"]
    assert "over flaskfleet_memory_commit_limit (90.0 %): the preflight refuses this host" in warning, warning
    assert "WARNING controller: the services plan to use" in out and "OVER" in out, out[-3000:]


def test_the_budget_divides_a_small_host_between_its_services(inventory, tmp_path):
    """The controller's memory less a reserve that leaves 1500 MB: the shares shrink first, then
    processes, and each role plans within what it got; the table says which and why."""
    memory_mb = _plan(inventory, tmp_path / "plain.json")[0]["memory_mb"]
    plan, out = _plan(inventory, tmp_path / "plan.json", {"flaskfleet_memory_reserved_mb": memory_mb - 1500})
    budget, services = plan["budget"], plan["budget"]["services"]
    assert budget["available_mb"] == 1500 and budget["planned_mb"] <= 1500, budget
    assert budget["within_limit"], budget
    [broker] = plan["redis"]["instances"]
    # Redis and Loki gave up memory first, in proportion, and never below their minimums
    assert services["redis-server@broker"]["shrunk"] and services["loki"]["shrunk"], services
    assert broker["maxmemory_mb"] == services["redis-server@broker"]["planned_mb"] >= 64, broker
    assert plan["loki"]["memory_max_mb"] == services["loki"]["planned_mb"] * 4 // 3 >= 256, plan["loki"]
    # the pools plan exactly the processes the budget gave them
    gunicorn = plan["gunicorn"]
    assert gunicorn["workers"] == services["gunicorn-app"]["count"] and gunicorn["budget_mb"] == services["gunicorn-app"]["planned_mb"]
    for name, worker in plan["celery"]["workers"].items():
        assert worker["concurrency"] == services[worker["service"]]["count"], (name, worker)
    assert "shrunk from" in out and "planned " + str(budget["planned_mb"]) + " MB of " in out, out[-3000:]
    assert plan["warnings"] == [], plan["warnings"]
