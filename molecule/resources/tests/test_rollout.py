# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet.stack.deploy across the two web hosts, one batch at a time, while the
test's own client keeps asking both through their published HTTPS ports.

Scenario default (two web hosts). Tests run in file order: the broken release
starts from the release the good rollout left.
"""
from __future__ import annotations

import json
import time

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run, changed_tasks
from flaskfleet_testlib.engine import instance_host, published_port
from flaskfleet_testlib.https import Load, MixedLoad, https_get
from flaskfleet_testlib.inventory import group_hosts, group_vars
from flaskfleet_testlib.releases import app_source, release_vars
from flaskfleet_testlib.service import redis_admin
from flaskfleet_testlib.stack import SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or len(group_hosts("flask_web")) < 2,
                                reason="scenario default: two web hosts")

WEBS = group_hosts("flask_web")
APP_HOSTS = list(dict.fromkeys(WEBS + group_hosts("flask_workers")))
# The demo app's stand-in for a migration (flask record-release): it counts its runs in the broker's Redis
# (the result backend's database) and writes the venv it ran in.
RELEASE_COMMAND = "flask record-release"
RELEASE_TASK = "TASK [flaskfleet.stack.flask_app : Run flask_app_release_command in the new release]"
SOURCES = {}  # app sources a later test deploys again (built on the hosts already)


def _version(port):
    status, body = https_get(port, "/")
    assert status == 200, (status, body[:300])
    return json.loads(body)["version"]


def _deploy(source, *options):
    return ansible_run(["ansible-playbook", "playbooks/deploy.yml", "-e", json.dumps(release_vars(source)), *options],
                       check=False)


def _release_command_runs():
    """What the demo's release command left in Redis: its runs, the venv of the last one."""
    redis = instance_host(group_hosts("redis")[0])
    return (int(redis_admin(redis, "-n 1 GET flaskfleet-demo:release-command-runs") or 0),
            redis_admin(redis, "-n 1 GET flaskfleet-demo:release-command-venv"))


@pytest.fixture(scope="module")
def ports():
    return {web: published_port(web) for web in WEBS}


def test_a_rolling_deploy_fails_no_request_and_ends_on_the_new_release_everywhere(ports, tmp_path_factory):
    """With a release command (flask_app_release_command): it runs once for the fleet, on the first host,
    in the new release with the app's environment, before any host switches."""
    source = app_source(tmp_path_factory.mktemp("rollout"), "2.0.0+rollout")
    runs, _venv = _release_command_runs()
    with Load(list(ports.values())) as load:
        time.sleep(2)
        proc = _deploy(source, "-e", json.dumps({"flask_app_release_command": RELEASE_COMMAND}))
        time.sleep(2)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # once for the fleet, on the play's first host, in the release it went to, before any switch
    assert [task for task in changed_tasks(proc.stdout) if task.startswith(RELEASE_TASK)] == [f"{RELEASE_TASK} {WEBS[0]}"]
    assert _release_command_runs() == (runs + 1, instance_host(WEBS[0]).check_output("readlink /srv/app/current") + "/venv")
    assert proc.stdout.index(RELEASE_TASK) < proc.stdout.index("TASK [Switch to the new release"), proc.stdout[-3000:]
    served = {web: load.counts[port] for web, port in ports.items()}
    print(f"rolling deploy over {len(WEBS)} web hosts, one at a time: (served, failed) per host {served}")
    assert all(count[0] > 50 for count in served.values()), served
    assert not load.failures, load.failures[:20]
    assert {web: _version(port) for web, port in ports.items()} == {web: "2.0.0+rollout" for web in WEBS}
    # one batch at a time: the second host's play started after the first's ended
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == len(set(WEBS + group_hosts("flask_workers")))


def test_a_broken_release_stops_after_the_first_batch_and_is_switched_back(ports, tmp_path_factory):
    source = SOURCES["broken"] = app_source(tmp_path_factory.mktemp("broken"), "2.0.1+broken", healthz_status=503)
    before = {web: _version(port) for web, port in ports.items()}
    links = {web: instance_host(web).check_output("readlink /srv/app/current") for web in WEBS}
    proc = _deploy(source, "-e", '{"flask_app_health_timeout": 10}')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    first, *rest = WEBS
    assert "did not pass its health check" in output and "switched back to release" in output, output[-3000:]
    # the first batch's host is back on the release it served; later batches never started
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == 1, output[-3000:]
    assert {web: _version(port) for web, port in ports.items()} == before == {web: "2.0.0+rollout" for web in WEBS}
    assert {web: instance_host(web).check_output("readlink /srv/app/current") for web in WEBS} == links
    print(f"broken release: stopped on {first}, switched back; {rest} untouched")


def test_a_failing_release_command_stops_the_deploy_before_any_host_switches(ports, tmp_path_factory):
    """A release command that fails (a broken migration): the deploy stops on the first host, before any host
    switches, and shows the command's output. (The broken release of the test before: already built there.)"""
    source = SOURCES.get("broken") or app_source(tmp_path_factory.mktemp("broken"), "2.0.1+broken", healthz_status=503)
    links = {name: instance_host(name).check_output("readlink /srv/app/current") for name in APP_HOSTS}
    runs = _release_command_runs()
    proc = _deploy(source, "-e", json.dumps({"flask_app_release_command": RELEASE_COMMAND + " --fail"}))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert f"flask_app_release_command failed on {WEBS[0]} with exit code 1" in output, output[-3000:]
    assert "record-release: failed, as asked (--fail)" in output, output[-3000:]
    # no host switched, no later batch started, nothing recorded
    assert "TASK [Switch to the new release" not in proc.stdout, output[-3000:]
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == 1, output[-3000:]
    assert {name: instance_host(name).check_output("readlink /srv/app/current") for name in APP_HOSTS} == links
    assert _release_command_runs() == runs
    assert {web: _version(port) for web, port in ports.items()} == {web: "2.0.0+rollout" for web in WEBS}
    print(f"a failing release command: stopped on {WEBS[0]} before any switch; {len(APP_HOSTS)} hosts unchanged")


# Gunicorn's three files a settings change reaches: its environment, its configuration, its unit.
SERVICE_FILES = ("/etc/flaskfleet/app.env", "/etc/flaskfleet/gunicorn-app.conf.py",
                 "/etc/systemd/system/gunicorn-app.service")
HOOK_MARKS = "/run/flaskfleet-test-hook-*"
# site.yml (the scenario's converge) on the web hosts, the app and Gunicorn only
SITE_APP = ["ansible-playbook", "molecule/resources/converge.yml", "--limit", ",".join(WEBS), "--tags", "flask_app,gunicorn"]


def _state(web):
    host = instance_host(web)
    return {"files": host.check_output("sha256sum " + " ".join(SERVICE_FILES)),
            "limit": host.check_output("systemctl show -P LimitNOFILE gunicorn-app"),
            "master": host.check_output("systemctl show -P MainPID gunicorn-app"),
            "current": host.check_output("readlink /srv/app/current")}


def _hooks(tmp_path):
    """Batch hook task files that leave a mark on the host they ran for."""
    hooks = {}
    for when in ("pre", "post"):
        path = tmp_path / f"{when}.yml"
        path.write_text(f"- name: Mark the {when} hook\n  ansible.builtin.file:\n"
                        f"    path: /run/flaskfleet-test-hook-{when}\n    state: touch\n    mode: '0644'\n")
        hooks[f"flaskfleet_batch_{when}_tasks"] = str(path)
    return hooks


def _marks(web):
    return instance_host(web).run(f"ls {HOOK_MARKS}").stdout.split()


def test_a_change_that_breaks_every_web_host_stops_at_the_first_and_goes_back_whole(ports, tmp_path):
    """site.yml: one run changes the environment file (a value Python cannot start with), Gunicorn's
    configuration and its unit on both web hosts. They are staged on both; the first batch's host puts
    them live, fails, takes all of it back and serves; the second host never applies."""
    first, second = WEBS
    for web in WEBS:
        instance_host(web).run(f"rm -f {HOOK_MARKS}")
    before = {web: _state(web) for web in WEBS}
    versions = {web: _version(port) for web, port in ports.items()}
    broken = {"flask_app_env": {"PYTHONHOME": "/nonexistent"}, "gunicorn_settings": {"timeout": 77},
              "gunicorn_nofile": 5000, "flask_app_health_timeout": 10, **_hooks(tmp_path)}
    with Load(list(ports.values())) as load:
        proc = ansible_run([*SITE_APP, "-e", json.dumps(broken)], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    # named, with the reason from its log
    assert "gunicorn-app (systemd) did not start" in output and "Fatal Python error" in output, output[-3000:]
    assert "switched back to release" in output and "the settings it ran with" in output, output[-3000:]
    # the first host: back on its files, unit and release, serving; the hooks' pre ran, post did not
    after = _state(first)
    assert {key: after[key] for key in ("files", "limit", "current")} == \
        {key: before[first][key] for key in ("files", "limit", "current")}
    assert _marks(first) == ["/run/flaskfleet-test-hook-pre"]
    # the second host: untouched (its master, files and release), no hook ran; its change waits staged
    assert _state(second) == before[second]
    assert _marks(second) == []
    assert instance_host(second).run("test -e /etc/flaskfleet/app.env.staged").rc == 0
    assert {web: _version(port) for web, port in ports.items()} == versions
    # the second host served throughout; what the first host's failed start cost is printed
    served = {web: load.counts[port] for web, port in ports.items()}
    assert served[second][0] > 20 and served[second][1] == 0, served
    print(f"a change that breaks the app, through site.yml: (served, failed) per host {served}")


def test_a_rotated_value_goes_live_one_host_at_a_time_with_no_failed_request(ports, tmp_path):
    """site.yml rotates a value of the environment file (as a secret's rotation) on both web hosts, under
    twice as many parallel clients as a host has workers: one host at a time, no request failed; the
    second host's stage left by the test before replaced; the hooks run around each host's apply."""
    first, second = WEBS
    for web in WEBS:
        instance_host(web).run(f"rm -f {HOOK_MARKS}")
    token = f"rotated-{time.time_ns()}"
    rotated = {"flask_app_env": {**group_vars("flask_web").get("flask_app_env", {}), "FLASKFLEET_DEMO_ECHO_TOKEN": token},
               **_hooks(tmp_path)}
    clients = 2 * len(instance_host(first).check_output("pgrep -P $(systemctl show -P MainPID gunicorn-app)").split())
    with MixedLoad(list(ports.values()), clients) as load:
        load.wait_requests(clients)
        good = ansible_run([*SITE_APP, "-e", json.dumps(rotated)], check=False)
        load.wait_requests(clients)
    assert good.returncode == 0, (good.stdout + good.stderr)[-3000:]
    measured = load.summary()
    print(f"a value of the environment rotated on {len(WEBS)} web hosts, {clients} clients: {measured}")
    assert measured["posts"] > 0 and measured["failed_requests"] == 0, measured
    for web, port in ports.items():
        status, body = https_get(port, "/env/FLASKFLEET_DEMO_ECHO_TOKEN")
        assert status == 200 and json.loads(body)["value"] == token, (web, status, body[:300])
        assert sorted(_marks(web)) == ["/run/flaskfleet-test-hook-post", "/run/flaskfleet-test-hook-pre"], web
    assert instance_host(second).run("ls /etc/flaskfleet/app.env.staged").rc != 0
    # one host at a time: the second host's apply began after the first's had ended (its post hook)
    marked = {web: float(instance_host(web).check_output(
        f"python3 -c 'import os, sys; print(os.stat(sys.argv[1]).st_mtime)' /run/flaskfleet-test-hook-{when}"))
        for web, when in ((first, "post"), (second, "pre"))}
    assert marked[second] >= marked[first], marked
    assert good.stdout.count("PLAY [App hosts - the staged changes live") == len(WEBS), good.stdout[-3000:]
    # the scenario's own environment back for the tests after this one
    back = ansible_run(SITE_APP, check=False)
    assert back.returncode == 0, (back.stdout + back.stderr)[-3000:]


CELERY_SERVICE = "celery-app-default"


def _worker_state(name):
    host = instance_host(name)
    return {"current": host.check_output("readlink /srv/app/current"),
            "releases": host.check_output("ls /srv/app/releases"),
            "master": host.check_output(f"systemctl show -P MainPID {CELERY_SERVICE}"),
            "staged": host.run("find /etc/flaskfleet /etc/systemd/system -name '*.staged'").stdout.split()}


def test_a_release_whose_celery_app_fails_stops_at_the_first_worker_and_goes_back(ports, tmp_path_factory, tmp_path):
    """deploy.yml, a release whose tasks module cannot be imported (the web app still starts): the web
    host's batch passes, the first worker host's Celery never answers its ping, the host goes back whole
    and consumes again, the second worker host is never touched. Then the scenario's own release back,
    with batch hooks: they run only on the hosts that had something to apply."""
    workers = group_hosts("flask_workers")
    if len(workers) < 2:
        pytest.skip("two worker hosts")
    first, second = workers[:2]
    order = WEBS + [name for name in workers if name not in WEBS]
    before = {name: _worker_state(name) for name in workers}
    reason = "flaskfleet-test: this release's tasks do not import"
    source = app_source(tmp_path_factory.mktemp("celery-broken"), "2.0.2+celery-broken", tasks_import_error=reason)
    proc = _deploy(source, "-e", '{"celery_health_timeout": 15}')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert f"{CELERY_SERVICE} (systemd) did not pass its health command" in output and reason in output, output[-3000:]
    assert "switched back to release" in output, output[-3000:]
    # the batches up to the first worker host ran, no later one
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == order.index(first) + 1, output[-3000:]
    # the first worker host: back on its release, nothing left staged, its worker answers through the broker
    after = _worker_state(first)
    assert (after["current"], after["staged"]) == (before[first]["current"], []), (after, before[first])
    ping = instance_host(first).run(
        "systemd-run --quiet --wait --pipe --collect -p User=app -p Group=app -p EnvironmentFile=/etc/flaskfleet/app.env"
        " -p WorkingDirectory=/srv/app -E PYTHONPATH=/srv/app/celery /srv/app/current/venv/bin/python -m celery"
        " --app flaskfleet_demo.tasks:celery --config flaskfleet_celeryconfig inspect ping --timeout 10"
        " -d default@$(uname -n)")
    assert ping.rc == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    # the second worker host: untouched (its release, its worker's process, no new release built)
    assert _worker_state(second) == before[second]
    print(f"a release whose Celery app fails: stopped on {first} (batch {order.index(first) + 1} of {len(order)}),"
          f" switched back and consuming; {second} untouched")
    # the scenario's own release everywhere again; a host with nothing to apply runs no hook
    for name in order:
        instance_host(name).run(f"rm -f {HOOK_MARKS}")
    back = ansible_run(["ansible-playbook", "playbooks/deploy.yml", "-e", json.dumps(_hooks(tmp_path))], check=False)
    assert back.returncode == 0, (back.stdout + back.stderr)[-3000:]
    assert _marks(first) == [], "hooks ran on a host that had nothing to apply"
    for name in (WEBS[0], second):
        assert sorted(_marks(name)) == ["/run/flaskfleet-test-hook-post", "/run/flaskfleet-test-hook-pre"], name


def test_a_rollback_after_a_redeploy_of_an_older_release_still_finds_it(ports, tmp_path_factory):
    """The first web host serves a release older by build time than others on disk (the test before put
    the scenario's own release back). A release that fails only through nginx (its own check through
    Gunicorn's socket passes) is deployed with flask_app_keep_releases 2: the release live before the run
    is still there when the check through nginx sends the host back to it."""
    web = WEBS[0]
    host = instance_host(web)
    live, version = host.check_output("readlink /srv/app/current"), _version(ports[web])
    built = {path: float(mtime) for mtime, path in (line.split() for line in host.check_output(
        "find /srv/app/releases -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\\n'").splitlines())}
    # what made pruning by build time (keeping 2: the new one and the newest other) remove it
    assert any(mtime > built[live] for mtime in built.values()), built
    source = app_source(tmp_path_factory.mktemp("via-nginx"), "2.0.3+broken-through-nginx", proxied_healthz_status=503)
    settings = {"flask_app_keep_releases": 2, "flaskfleet_deploy_nginx_retries": 3}
    proc = _deploy(source, "--limit", web, "-e", json.dumps(settings))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "did not answer healthy through nginx" in output and f"switched back to {live.rsplit('/', 1)[1]}" in output, \
        output[-3000:]
    assert host.check_output("readlink /srv/app/current") == live
    assert _version(ports[web]) == version
    print(f"a release failing through nginx after a redeploy of an older one: back on {live} ({version});"
          f" releases on disk {len(built)} -> {len(host.check_output('ls /srv/app/releases').split())}")
