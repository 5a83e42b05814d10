# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Deploys: a new release reloads gracefully wherever Gunicorn runs and never half-applies.

A release that fails its health check and is switched back: test_rollout.py
(through flaskfleet.stack.deploy, the playbook a deploy runs).

Runs on the Debian 12 instance of each scenario, in order (each step starts
from the release the previous one left live). Scenario supervisord moves
Gunicorn alone (gunicorn_supervisor): the new code must still be served,
through the supervise role's registry.
"""
from __future__ import annotations

import json
import time

import pytest
from flaskfleet_testlib.ansible_cli import changed_tasks, converge
from flaskfleet_testlib.engine import published_port
from flaskfleet_testlib.faults import record_fault
from flaskfleet_testlib.https import Load, MixedLoad
from flaskfleet_testlib.releases import EXCLUDED, app_source, release_vars
from flaskfleet_testlib.service import curl_in, gunicorn_workers, main_pid, supervise_registry
from flaskfleet_testlib.stack import SERVICE, SUPERVISOR

# Deploys touch the app and Gunicorn only (the checks of every role still run); the
# first one also moves nginx's names. Molecule's idempotence step runs the whole play.
APP_ONLY = ("--tags", "flask_app,gunicorn")
WEB_TIER = ("--tags", "flask_app,gunicorn,nginx")


@pytest.fixture(scope="module")
def debian12(instance):
    if not instance.endswith("debian12"):
        pytest.skip("deploys run on one platform per scenario")
    return instance


def _version(host):
    return json.loads(curl_in(host, "/").stdout)["version"]


def _status(host, path):
    return curl_in(host, path, "-o /dev/null", "-w '%{http_code}'").stdout


def _live_release(host):
    return host.check_output("readlink /srv/app/current")


@pytest.mark.fault
def test_new_release_is_served_after_a_graceful_reload(debian12, host, tmp_path_factory):
    source = app_source(tmp_path_factory.mktemp("v2"), "1.0.1+rollout", extra_static="extra.txt")
    master, workers, before = main_pid(host), set(gunicorn_workers(host)), _live_release(host)
    extra = release_vars(source)
    if SUPERVISOR == "systemd":
        extra["nginx_server_names"] = ["app.example.test", "www.example.test"]
    if SUPERVISOR == "systemd":
        # --check first: it names the release and the static files it would
        # publish (both new here) and changes nothing
        check = converge(debian12, extra, *APP_ONLY, "--check")
        assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
        assert "would be built in /srv/app/releases/" in check.stdout, check.stdout[-3000:]
        assert "would be published in" in check.stdout, check.stdout[-3000:]
        assert (_live_release(host), main_pid(host)) == (before, master)
        assert _version(host) == "1.0.0"
    # the deploy's reload under a steady load from outside: no request may fail
    with Load([published_port(debian12)]) as load:
        load.wait_requests(20)
        began = time.monotonic()
        proc = converge(debian12, extra, *WEB_TIER)
        load.wait_requests(20)
    assert proc.returncode == 0, proc.stdout[-3000:]
    measured = load.summary(began)
    record_fault("Gunicorn reload for a new release (deploy)", **measured)
    assert measured["requests"] > 50 and not load.failures, (measured, load.failures[:20])
    assert _version(host) == "1.0.1+rollout"
    assert main_pid(host) == master, "the master was restarted, not reloaded"
    assert not set(gunicorn_workers(host)) & workers, "old workers still serve"
    assert _live_release(host) != before
    assert host.file(before).is_directory, "the previous release is kept for a switch back"
    for name in EXCLUDED:
        assert not host.file(f"/srv/app/current/src/{name}").exists, name
    assert _status(host, "/static/extra.txt") == "200"
    if SUPERVISOR == "systemd":
        # the self-signed certificate follows nginx_server_names
        san = host.check_output("openssl x509 -in /etc/nginx/tls/app.crt -noout -ext subjectAltName")
        assert "DNS:www.example.test" in san, san


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")
def test_a_failed_run_after_a_code_change_leaves_the_live_release_serving(debian12, host, tmp_path_factory):
    source = app_source(tmp_path_factory.mktemp("v3"), "1.0.2+after-failure")
    version, release, master = _version(host), _live_release(host), main_pid(host)
    # gunicorn's config check refuses this after the new release was built: the release, its
    # static files and the settings go live together at the end of the run, so none of it did
    failed = converge(debian12, {**release_vars(source), "gunicorn_settings": {"backlog": "not-a-number"}}, *APP_ONLY)
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert (_version(host), _live_release(host), main_pid(host)) == (version, release, master)
    assert _status(host, "/static/extra.txt") == "200"
    # what an interrupted unpack left beside the contents goes with the next switch (the newest
    # directory there: it must not pass for the previous content); a directory of the user's
    # there stays (older than every content: it must not pass for an old one)
    made = host.run("mkdir -p /var/www/app/static-mine && touch /var/www/app/static-mine/keep.txt"
                    " && touch -d 2000-01-01 /var/www/app/static-mine"
                    " && mkdir -p /var/www/app/static-0123456789ab.unpacking")
    assert made.rc == 0, made.stderr
    # the next good run switches to it
    again = converge(debian12, release_vars(source), *APP_ONLY)
    assert again.returncode == 0, again.stdout[-3000:]
    assert _version(host) == "1.0.2+after-failure"
    # removed from the source: no longer downloadable
    assert _status(host, "/static/extra.txt") == "404"
    assert not host.file("/var/www/app/static-0123456789ab.unpacking").exists
    assert host.file("/var/www/app/static-mine/keep.txt").exists
    registry = supervise_registry(host)
    assert registry["pending"] == {}, registry


def _running_class(host):
    """The worker class the running workers show: gevent's extension mapped, or threads, or neither.
    All workers are looked at: a gthread worker starts its threads with its first request."""
    workers = gunicorn_workers(host)
    if any(host.run(f"grep -q gevent /proc/{worker}/maps").rc == 0 for worker in workers):
        return "gevent"
    threads = [int(host.check_output(f"awk '/^Threads:/ {{print $2}}' /proc/{worker}/status")) for worker in workers]
    return "gthread" if max(threads) > 1 else "sync"


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")
def test_a_worker_class_change_applies_under_load_with_its_release(debian12, host):
    """io (gevent: a release with gevent) -> cpu (sync: a release without it; Gunicorn used to restart on
    it with its gevent config, and every request failed) -> the scenario's own (mixed: gthread). Each
    under twice as many parallel clients as workers, slow GETs and POSTs among them. Every worker of the
    old master exits by itself (a gevent worker holding a keep-alive connection nginx kept idle used to
    wait graceful_timeout until its master killed it, requests queued on the socket all that time)."""
    clients = 2 * len(gunicorn_workers(host))
    steps = (("io", "gevent"), ("cpu", "sync"), (None, "gthread"))
    try:
        for workload, worker_class in steps:
            extra = {"gunicorn_workload": workload} if workload else None
            with MixedLoad([published_port(debian12)], clients) as load:
                load.wait_requests(clients)
                since, old_workers = host.check_output("date +%s"), gunicorn_workers(host)
                proc = converge(debian12, extra, *APP_ONLY)
                load.wait_requests(clients)
            assert proc.returncode == 0, proc.stdout[-3000:]
            measured = load.summary()
            print(f"gunicorn_workload -> {workload or 'mixed'}: {clients} clients, {measured}")
            assert measured["posts"] > 0 and measured["failed_requests"] == 0, (workload, measured)
            # a worker killed by its master at graceful_timeout never logs its exit
            exits = host.check_output(f"journalctl -u {SERVICE} -o cat --since @{since}")
            assert all(f"Worker exiting (pid: {pid})" in exits for pid in old_workers), (workload, old_workers, exits)
            config = host.check_output(f"grep -E '^worker_class' /etc/flaskfleet/{SERVICE}.conf.py")
            assert config == f'worker_class = "{worker_class}"', config
            assert _running_class(host) == worker_class
    finally:
        if _running_class(host) != "gthread":  # the scenario's own settings back for the tests after this one
            converge(debian12, None, *APP_ONLY)


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")
def test_a_live_release_whose_venv_no_longer_runs_is_rebuilt_and_the_app_restarted(debian12, host):
    """An upgrade of the OS (Debian 12 -> 13: Python 3.11 -> 3.13) leaves each release's venv linked to an
    interpreter that has none of its packages (lib/python3.11). Simulated on the live release: its
    lib/python3.X goes away. The next run rebuilds the release and restarts Gunicorn (a reload would keep
    the master's old interpreter and paths), which serves again."""
    release, master = _live_release(host), main_pid(host)
    version = host.check_output("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    lib = f"{release}/venv/lib/python{version}"
    assert host.file(lib).is_directory
    host.run(f"rm -rf /tmp/gone-lib && mv {lib} /tmp/gone-lib")
    try:
        proc = converge(debian12, None, *APP_ONLY)
    finally:
        host.run("rm -rf /tmp/gone-lib")
    assert proc.returncode == 0, proc.stdout[-3000:]
    build = ("TASK [flaskfleet.stack.flask_app : Make the release's venv, install the app and its requirements into it,"
             f" mark the release complete] {debian12}")
    assert build in changed_tasks(proc.stdout), proc.stdout[-3000:]
    assert host.file(lib).is_directory and _live_release(host) == release
    assert main_pid(host) != master, "reloaded, not restarted: the master still runs the interpreter it started with"
    assert _status(host, "/healthz") == "200"
    print(f"live release {release.rsplit('/', 1)[1]} without lib/python{version}: rebuilt, Gunicorn restarted"
          f" ({master} -> {main_pid(host)}), serving")
