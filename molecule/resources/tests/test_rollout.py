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
import testinfra
from flaskfleet_testlib.ansible_cli import ansible_run
from flaskfleet_testlib.engine import engine_cli, published_port
from flaskfleet_testlib.https import Load, https_get
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.releases import app_source, release_vars
from flaskfleet_testlib.stack import SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or len(group_hosts("flask_web")) < 2,
                                reason="scenario default: two web hosts")

WEBS = group_hosts("flask_web")


def _host(name):
    return testinfra.get_host(f"{engine_cli()}://{name}")


def _version(port):
    status, body = https_get(port, "/")
    assert status == 200, (status, body[:300])
    return json.loads(body)["version"]


def _deploy(source, *options):
    return ansible_run(["ansible-playbook", "playbooks/deploy.yml", "-e", json.dumps(release_vars(source)), *options],
                       check=False)


@pytest.fixture(scope="module")
def ports():
    return {web: published_port(web) for web in WEBS}


def test_a_rolling_deploy_fails_no_request_and_ends_on_the_new_release_everywhere(ports, tmp_path_factory):
    source = app_source(tmp_path_factory.mktemp("rollout"), "2.0.0+rollout")
    with Load(list(ports.values())) as load:
        time.sleep(2)
        proc = _deploy(source)
        time.sleep(2)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    served = {web: load.counts[port] for web, port in ports.items()}
    print(f"rolling deploy over {len(WEBS)} web hosts, one at a time: (served, failed) per host {served}")
    assert all(count[0] > 50 for count in served.values()), served
    assert not load.failures, load.failures[:20]
    assert {web: _version(port) for web, port in ports.items()} == {web: "2.0.0+rollout" for web in WEBS}
    # one batch at a time: the second host's play started after the first's ended
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == len(set(WEBS + group_hosts("flask_workers")))


def test_a_broken_release_stops_after_the_first_batch_and_is_switched_back(ports, tmp_path_factory):
    source = app_source(tmp_path_factory.mktemp("broken"), "2.0.1+broken", healthz_status=503)
    before = {web: _version(port) for web, port in ports.items()}
    links = {web: _host(web).check_output("readlink /srv/app/current") for web in WEBS}
    proc = _deploy(source, "-e", '{"flask_app_health_timeout": 10}')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    first, *rest = WEBS
    assert "did not pass its health check" in output and "switched back to release" in output, output[-3000:]
    # the first batch's host is back on the release it served; later batches never started
    assert proc.stdout.count("PLAY [Roll the release out, a batch at a time]") == 1, output[-3000:]
    assert {web: _version(port) for web, port in ports.items()} == before == {web: "2.0.0+rollout" for web in WEBS}
    assert {web: _host(web).check_output("readlink /srv/app/current") for web in WEBS} == links
    print(f"broken release: stopped on {first}, switched back; {rest} untouched")
