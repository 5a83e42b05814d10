# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logs, seen from Loki: lines of a request queried back by its id, labels of low
cardinality, nothing lost or doubled over restarts, and what never goes live.

Scenario default: Loki on the Redis host (group loki), Promtail on every host.
Tests run in file order.
"""
from __future__ import annotations

import json
import os
import pathlib
import shlex
import time
import uuid

import pytest
from flaskfleet_testlib.ansible_cli import converge
from flaskfleet_testlib.engine import instance_host
from flaskfleet_testlib.faults import FAULTS_FULL, record_fault
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.service import curl_in
from flaskfleet_testlib.stack import SUPERVISOR

LOKIS = group_hosts("loki")
pytestmark = pytest.mark.skipif(not LOKIS, reason="no loki host in this scenario")

LOKI_HOST = LOKIS[0] if LOKIS else ""
WEB = (group_hosts("flask_web") or [""])[0]
# The labels a stream may carry (service_name is Loki's own, from service).
LABELS = {"host", "service", "app", "level", "source", "service_name"}
PER_REQUEST = {"request_id", "path", "status", "task_id"}


@pytest.fixture(scope="module")
def loki():
    return instance_host(LOKI_HOST)


@pytest.fixture(scope="module")
def web():
    return instance_host(WEB)


def loki_url(loki):
    """Loki's base URL as the shippers use it (its private address in a fleet)."""
    config = loki.check_output("cat /etc/loki/loki.yml")
    address = next(line.split(":", 1)[1].strip().strip("'\"") for line in config.splitlines()
                   if line.strip().startswith("http_listen_address:"))
    return f"http://{address}:3100"


def query(loki, logql, since="15m", limit=5000):
    """Streams of a LogQL query over the last `since`, asked on the Loki host."""
    args = " ".join(f"--data-urlencode {shlex.quote(arg)}" for arg in (f"query={logql}", f"since={since}", f"limit={limit}"))
    out = loki.run(f"curl -sS -G --max-time 30 {args} {loki_url(loki)}/loki/api/v1/query_range")
    assert out.rc == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(loki, logql, at_least=1, timeout=60):
    """Streams once at least `at_least` lines answer the query (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        streams = query(loki, logql)
        count = sum(len(stream["values"]) for stream in streams)
        if count >= at_least or time.monotonic() > deadline:
            return streams
        time.sleep(2)


def unit_user(host, unit):
    pid = host.check_output(f"systemctl show -P MainPID {unit}")
    assert pid != "0", f"{unit} is not running"
    return host.check_output(f"ps -o user= -p {pid}")


def test_loki_runs_enabled_at_boot_as_its_own_user(loki):
    assert loki.check_output("systemctl is-enabled loki") == "enabled"
    assert unit_user(loki, "loki") == "loki"
    # a query answers, not only /ready
    assert query(loki, '{host=~".+"}', limit=1) is not None


def test_promtail_runs_on_every_host_as_a_journal_reader(any_instance):
    host = instance_host(any_instance)
    assert host.check_output("systemctl is-enabled promtail") == "enabled"
    assert unit_user(host, "promtail") == "promtail"
    groups = host.check_output("id -nG promtail").split()
    assert "systemd-journal" in groups, groups
    log = host.check_output("journalctl -u promtail -o cat --no-pager")
    assert "support for reading the systemd journal is not compiled" not in log
    assert "journal" in host.check_output("cat /etc/promtail/promtail.yml")


def test_a_request_is_found_in_loki_by_its_id_with_only_low_cardinality_labels(web, loki):
    out = curl_in(web, "/whoami")
    request_id = json.loads(out.stdout)["headers"]["X-Request-Id"]
    # nginx's access line, Gunicorn's and the app's own record (whoami logs
    # one), by the id nginx gave the request
    streams = wait_for(loki, f'{{host="{WEB}"}} | request_id="{request_id}"', at_least=3)
    services = {stream["stream"].get("service") for stream in streams}
    assert "nginx" in services, f"no nginx line of request {request_id} in Loki: {streams}"
    assert any(service and service.startswith("gunicorn-") for service in services), services
    # Gunicorn's lines come from the journal, or under supervisord from its program log file
    sources = {stream["stream"].get("source") for stream in streams if stream["stream"].get("service", "").startswith("gunicorn-")}
    assert sources == {"supervisord" if SUPERVISOR == "supervisord" else "app"}, sources
    records = [json.loads(line) for stream in streams for _stamp, line in stream["values"]]
    assert any(record.get("logger") == "flaskfleet_demo" and record.get("level") == "info" for record in records), records
    # query_range shows structured metadata beside the labels: the index
    # labels are what the series API lists for the host's streams.
    match = shlex.quote(f'match[]={{host="{WEB}"}}')
    series = loki.run(f"curl -sS -G --max-time 30 --data-urlencode {match} {loki_url(loki)}/loki/api/v1/series")
    assert series.rc == 0, series.stderr
    for labels in json.loads(series.stdout)["data"]:
        # Loki's own internal labels (__stream_shard__ when it shards a busy stream) aside
        labels = {key: value for key, value in labels.items() if not key.startswith("__")}
        assert set(labels) <= LABELS, labels
        assert not set(labels) & PER_REQUEST, labels


def test_a_task_a_request_enqueued_is_found_on_the_worker_host_by_the_request_id(web, loki):
    worker = group_hosts("flask_workers")[0]
    out = curl_in(web, "/tasks/wait?ms=100", "-X POST", "-D /dev/stdout")
    head, _sep, body = out.stdout.partition("\r\n\r\n")
    # nginx gives the client the id every line of its request carries
    request_id = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("x-request-id:"))
    [task_id] = json.loads(body)["task_ids"]
    # the worker's lines (the web side's, on a host that is both, aside)
    streams = wait_for(loki, f'{{host="{worker}", service=~"celery-.+"}} | request_id="{request_id}"')
    records = [json.loads(line) for stream in streams for _stamp, line in stream["values"]]
    assert any(record.get("task_id") == task_id for record in records), records
    # and the task id alone finds the task's lines, from the worker only
    streams = wait_for(loki, f'{{host="{worker}"}} | task_id="{task_id}"')
    assert streams, f"no line of task {task_id}"
    assert all(stream["stream"].get("service", "").startswith("celery-") for stream in streams), streams


@pytest.mark.fault
def test_every_line_arrives_once_across_loki_and_promtail_restarts(web, loki):
    marker = f"count-{uuid.uuid4().hex[:12]}"
    # make faults: Loki down for a minute (Promtail keeps its lines and retries); make test: a restart
    down_s = 60 if FAULTS_FULL else 0
    total = 450 if FAULTS_FULL else 150
    web.run("rm -f /tmp/log-load.done")
    load = (f"for i in $(seq 1 {total}); do curl -sk -o /dev/null --resolve app.example.test:443:127.0.0.1"
            f" 'https://app.example.test/healthz?{marker}='$i; sleep 0.2; done; touch /tmp/log-load.done")
    web.run(f"systemd-run --unit flaskfleet-log-load --collect bash -c {shlex.quote(load)}")
    time.sleep(8)
    began = time.monotonic()
    if down_s:
        assert loki.run("systemctl stop loki").rc == 0
        time.sleep(down_s)
        assert loki.run("systemctl start loki").rc == 0
    else:
        assert loki.run("systemctl restart loki").rc == 0
    ready = f"curl -sf -o /dev/null {loki_url(loki)}/ready"
    while loki.run(ready).rc != 0 and time.monotonic() - began < down_s + 120:
        time.sleep(0.5)
    ready_s = round(time.monotonic() - began, 1)
    time.sleep(8)
    assert web.run("systemctl restart promtail").rc == 0
    deadline = time.monotonic() + 120 + 3 * total // 10
    while web.run("test -e /tmp/log-load.done").rc != 0 and time.monotonic() < deadline:
        time.sleep(1)
    # Each request wrote one line to nginx's JSON file and one to Gunicorn's journal.
    report = {}
    for service in ("nginx", "gunicorn-app"):
        streams = wait_for(loki, f'{{host="{WEB}", service="{service}"}} |= "{marker}"', at_least=total, timeout=120)
        lines = [line for stream in streams for _stamp, line in stream["values"]]
        numbers = sorted(int(json.loads(line)["query"].split("=", 1)[1]) for line in lines)
        report[service] = (len(set(numbers)), len(numbers) - len(set(numbers)),
                           sorted(set(range(1, total + 1)) - set(numbers)))
    outage = f"Loki stopped for {down_s} s" if down_s else "Loki restarted"
    record_fault(f"{outage}, then Promtail restarted; {total} requests logged", loki_ready_s=ready_s,
                 lost_log_lines=sum(len(missing) for _count, _doubled, missing in report.values()),
                 doubled_log_lines=sum(doubled for _count, doubled, _missing in report.values()))
    print(f"{total} requests over {outage} and a Promtail restart, (in Loki, twice, missing) per source: {report}")
    assert all(count == total and not doubled and not missing for count, doubled, missing in report.values()), report


def test_a_config_loki_refuses_never_replaces_the_running_one(loki):
    before = loki.check_output("sha256sum /etc/loki/loki.yml")
    pid = loki.check_output("systemctl show -P MainPID loki")
    # Retention without its delete-request store: only Loki itself can tell.
    proc = converge(LOKI_HOST, {"loki_config_overrides": {"compactor": {"delete_request_store": ""}}}, "--tags", "loki")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "delete-request-store" in output, output[-3000:]
    assert loki.check_output("sha256sum /etc/loki/loki.yml") == before
    assert loki.check_output("systemctl show -P MainPID loki") == pid
    assert query(loki, '{host=~".+"}', limit=1) is not None


def test_a_checksum_mismatch_is_refused_before_any_change(loki):
    state = "ls -l --time-style=+%s /opt/flaskfleet/loki /opt/flaskfleet/loki/*; sha256sum /etc/loki/loki.yml"
    before = loki.check_output(state)
    proc = converge(LOKI_HOST, {"loki_sha256": "0" * 64}, "--tags", "loki")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "loki_sha256" in output and "Nothing was installed on" in output, output[-3000:]
    assert loki.check_output(state) == before


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")
def test_a_tampered_zip_in_the_artifact_directory_is_refused_before_any_change(loki, tmp_path):
    source = pathlib.Path(os.environ["FLASKFLEET_ARTIFACTS"])
    (tmp_path / "loki-linux-amd64.zip").write_bytes((source / "loki-linux-amd64.zip").read_bytes()[:-16] + b"\0" * 16)
    (tmp_path / "SHA256SUMS").write_text((source / "SHA256SUMS").read_text())
    state = "ls -l --time-style=+%s /opt/flaskfleet/loki /opt/flaskfleet/loki/*"
    before = loki.check_output(state)
    proc = converge(LOKI_HOST, {"loki_artifact_dir": str(tmp_path)}, "--tags", "loki")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert f"{tmp_path}/loki-linux-amd64.zip has sha256" in output, output[-3000:]
    assert "Nothing was installed on" in output, output[-3000:]
    assert loki.check_output(state) == before


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")
def test_a_version_change_installs_beside_the_old_one_and_switches(loki):
    """Only Loki 3.4.6 can be had on this machine, so the older release is
    that binary installed as '3.4.5' and run by the unit from there: what is
    proven is the path a version change takes (install beside, validate with
    the new binary, switch the unit and the link, keep the old one)."""
    base = "/opt/flaskfleet/loki"
    loki.check_output(
        f"set -e; rm -rf {base}/3.4.5; cp -a {base}/3.4.6 {base}/3.4.5;"
        f" sed -i 's#{base}/3.4.6/loki#{base}/3.4.5/loki#' /etc/systemd/system/loki.service;"
        f" ln -sfn 3.4.5 {base}/current; rm -rf {base}/3.4.6;"
        " systemctl daemon-reload; systemctl restart loki")
    assert loki.check_output("readlink /proc/$(systemctl show -P MainPID loki)/exe") == f"{base}/3.4.5/loki"
    proc = converge(LOKI_HOST, {}, "--tags", "loki")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert loki.check_output(f"cat {base}/3.4.6/.zip-sha256-*").split()[1] == "loki-linux-amd64.zip"
    assert loki.check_output(f"readlink {base}/current") == "3.4.6"
    assert loki.check_output("readlink /proc/$(systemctl show -P MainPID loki)/exe") == f"{base}/3.4.6/loki"
    # the older release stays beside it (release_zip keeps two), for a way back
    assert loki.file(f"{base}/3.4.5/loki").is_file
    assert query(loki, '{host=~".+"}', limit=1) is not None
