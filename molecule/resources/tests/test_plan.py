# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet.stack.plan against the converged fleet: it changes nothing, and what it
shows for each host is what the roles configured there (read back from the hosts).

Scenario default (systemd units; the supervisord scenario's caps are supervisord's).
"""
from __future__ import annotations

import json
import re

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run, changed_tasks, converge
from flaskfleet_testlib.cgroups import unit_memory_limit
from flaskfleet_testlib.engine import instance_host
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.stack import SERVICE, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd", reason="scenario default")

MB = 1024 * 1024
CELERY_SERVICE = "celery-app-default"


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    proc = ansible_run(["ansible-playbook", "playbooks/plan.yml", "-e", f"flaskfleet_plan_file={path}"], check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(path.read_text()), proc.stdout


def test_the_plan_shows_every_host_and_changes_nothing(plan):
    data, out = plan
    hosts = group_hosts()
    assert sorted(data) == sorted(hosts), data.keys()
    recap = dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", out, re.M))
    assert recap == {host: "0" for host in hosts}, recap
    for host in hosts:
        assert f"{host}: {data[host]['cpus']} vCPU" in out, out[-3000:]
        assert not data[host]["warnings"], data[host]
        # one budget per host: every service it runs has its share, within the commit limit
        budget = data[host]["budget"]
        assert budget["within_limit"] and budget["planned_mb"] == sum(s["planned_mb"] for s in budget["services"].values())
        assert f"budget    planned {budget['planned_mb']} MB of {budget['memory_mb']} MB" in out, out[-3000:]
    print("\n".join(line.strip(' ",') for line in out.splitlines() if "bound:" in line))


def test_gunicorn_gets_what_the_plan_shows(plan):
    data, _out = plan
    for name in group_hosts("flask_web"):
        host, shown = instance_host(name), data[name]["gunicorn"]
        master = host.check_output(f"systemctl show -P MainPID {SERVICE}")
        assert len(host.check_output(f"pgrep -P {master}").split()) == shown["workers"], (name, shown)
        config = host.check_output(f"cat /etc/flaskfleet/{SERVICE}.conf.py")
        assert re.search(rf"^worker_class = ['\"]{shown['worker_class']}['\"]", config, re.M), config
        assert re.search(rf"^threads = {shown['threads']}$", config, re.M), config
        assert int(host.check_output(f"systemctl show -P MemoryHigh {SERVICE}")) == shown["memory_high_mb"] * MB
        assert unit_memory_limit(host, SERVICE) == shown["memory_max_mb"] * MB
        assert data[name]["budget"]["services"][SERVICE]["count"] == shown["workers"], data[name]["budget"]


def test_celery_gets_what_the_plan_shows(plan):
    data, _out = plan
    for name in group_hosts("flask_workers"):
        host = instance_host(name)
        for shown in data[name]["celery"]["workers"].values():
            service = shown["service"]
            main = host.check_output(f"systemctl show -P MainPID {service}")
            cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{main}/cmdline")
            assert f"--concurrency {shown['concurrency']} " in cmdline, cmdline
            assert f"--max-memory-per-child {shown['max_memory_per_child_kb']} " in cmdline, cmdline
            assert int(host.check_output(f"systemctl show -P MemoryHigh {service}")) == shown["memory_high_mb"] * MB
            assert unit_memory_limit(host, service) == shown["memory_max_mb"] * MB
            assert data[name]["budget"]["services"][service]["count"] == shown["concurrency"], data[name]["budget"]
        beat = data[name]["celery"]["beat"]
        if beat:
            assert unit_memory_limit(host, beat["service"]) == beat["memory_max_mb"] * MB


def test_redis_and_loki_get_what_the_plan_shows(plan):
    data, _out = plan
    [redis_name] = group_hosts("redis")[:1]
    redis = instance_host(redis_name)
    for instance in data[redis_name]["redis"]["instances"]:
        live = redis.check_output(f"cat /etc/redis/redis-{instance['name']}.live.conf")
        assert f"maxmemory {instance['maxmemory_mb']}mb" in live.splitlines(), live
        assert unit_memory_limit(redis, f"redis-server@{instance['name']}") == instance["memory_max_mb"] * MB
        assert instance["maxmemory_mb"] == data[redis_name]["budget"]["services"][f"redis-server@{instance['name']}"]["planned_mb"]
    # the broker is the last process the kernel's OOM killer picks (the unit's setting: lowering a
    # score needs CAP_SYS_RESOURCE, which these containers lack, so systemd skips it here)
    assert redis.check_output("systemctl show -P OOMScoreAdjust redis-server@broker") == "-900"
    [loki_name] = group_hosts("loki")[:1]
    shown = data[loki_name]["loki"]
    loki = instance_host(loki_name)
    assert unit_memory_limit(loki, "loki") == shown["memory_max_mb"] * MB
    assert int(loki.check_output("systemctl show -P MemoryHigh loki")) == shown["memory_high_mb"] * MB


def test_a_new_memory_cap_applies_to_the_running_service(plan):
    """gunicorn_memory_max_mb changed: the kernel enforces the new cap at once and the master
    keeps running (set-property, no restart); then back to the plan's cap the same way."""
    data, _out = plan
    name = group_hosts("flask_web")[0]
    host, planned_max = instance_host(name), data[name]["gunicorn"]["memory_max_mb"]
    # Under socket activation an earlier test may have left only the listener up: start the
    # service first (a no-op when it runs), so the master below is the one that must survive.
    host.check_output(f"systemctl start {SERVICE}")
    master = host.check_output(f"systemctl show -P MainPID {SERVICE}")
    assert master != "0"
    for cap_mb in (planned_max + 64, None):
        proc = converge(name, {"gunicorn_memory_max_mb": cap_mb} if cap_mb else None, "--tags", "gunicorn")
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        changed = changed_tasks(proc.stdout)
        assert any("Apply the new memory caps to the running service" in task for task in changed), changed
        assert unit_memory_limit(host, SERVICE) == (cap_mb or planned_max) * MB
        assert host.check_output(f"systemctl show -P MainPID,NeedDaemonReload {SERVICE}").split() == [master, "no"]
