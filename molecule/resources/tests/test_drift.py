# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drift is repaired: what someone changed by hand on converged hosts is put back by the next run.

On a web host: the nginx site, the Gunicorn configuration, the Gunicorn unit
and the Promtail configuration; on the Redis host: the broker's configuration
file and a live setting (CONFIG SET). The rerun puts each back, and what
serves runs the managed configuration: nginx and Gunicorn answer as
configured, the unit needs no daemon-reload and its cgroup has the managed
cap, Redis's live value is the managed one. The run after that changes nothing.
"""
from __future__ import annotations

import shlex

import pytest
import testinfra
from conftest import (SERVICE, SUPERVISOR, ansible_run, curl_in, engine_cli, group_hosts, gunicorn_workers, unit_memory_limit,
                      wait_for)

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or not group_hosts("redis") or
                                group_hosts("redis")[0] in group_hosts("flask_web"),
                                reason="the fleet scenario: Redis on a host of its own")

WEB_FILES = ("/etc/nginx/sites-available/app.conf", f"/etc/flaskfleet/{SERVICE}.conf.py",
             f"/etc/systemd/system/{SERVICE}.service", "/etc/promtail/promtail.yml")
REDIS_FILES = ("/etc/redis/redis-broker.conf",)
REDIS_CLI = ("REDISCLI_AUTH=$(cat /etc/redis/flaskfleet-admin.secret) redis-cli --user flaskfleet-admin"
             " -s /run/redis-broker/redis-server.sock")


def _host(name):
    return testinfra.get_host(f"{engine_cli()}://{name}")


def _sums(host, paths):
    return host.check_output("sha256sum " + " ".join(shlex.quote(p) for p in paths))


def _headers(host):
    return curl_in(host, "/healthz", "-o /dev/null", "-D -").stdout.lower()


def _rerun(names):
    proc = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", ",".join(names)], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_a_rerun_repairs_what_was_changed_by_hand(tmp_path):
    web_name, redis_name = group_hosts("flask_web")[0], group_hosts("redis")[0]
    web, redis = _host(web_name), _host(redis_name)
    web_sums, redis_sums = _sums(web, WEB_FILES), _sums(redis, REDIS_FILES)
    workers = len(gunicorn_workers(web))
    cap = unit_memory_limit(web, SERVICE)
    timeout = redis.check_output(f"{REDIS_CLI} CONFIG GET timeout").split()[1]
    assert workers >= 2 and timeout == "0"

    # By hand: a header in the site (reloaded), one Gunicorn worker (reloaded), a smaller cap in
    # the unit file (no daemon-reload), a debug log level for Promtail, a line in Redis's file and
    # a server-side idle timeout set live.
    web.check_output("sed -i 's/^\\(\\s*\\)add_header X-Request-ID/\\1add_header X-Drift by-hand always;\\n&/'"
                     " /etc/nginx/sites-available/app.conf && nginx -t -q && systemctl reload nginx")
    assert wait_for(lambda: "x-drift: by-hand" in _headers(web), timeout=20) is not None
    web.check_output(f"sed -i 's/^workers = .*/workers = 1/' /etc/flaskfleet/{SERVICE}.conf.py && systemctl reload {SERVICE}")
    assert wait_for(lambda: len(gunicorn_workers(web)) == 1, timeout=60) is not None
    web.check_output(f"sed -i 's/^MemoryMax=.*/MemoryMax=700M/' /etc/systemd/system/{SERVICE}.service")
    assert web.check_output(f"systemctl show -P NeedDaemonReload {SERVICE}") == "yes"
    web.check_output("sed -i 's/^  log_level: info/  log_level: debug/' /etc/promtail/promtail.yml")
    redis.check_output("echo '# changed by hand' >> /etc/redis/redis-broker.conf")
    redis.check_output(f"{REDIS_CLI} CONFIG SET timeout 300")
    assert _sums(web, WEB_FILES) != web_sums and _sums(redis, REDIS_FILES) != redis_sums

    _rerun([web_name, redis_name])

    assert _sums(web, WEB_FILES) == web_sums
    assert _sums(redis, REDIS_FILES) == redis_sums
    assert "x-drift" not in _headers(web)
    assert wait_for(lambda: len(gunicorn_workers(web)) == workers, timeout=60) is not None, gunicorn_workers(web)
    assert web.check_output(f"systemctl show -P NeedDaemonReload {SERVICE}") == "no"
    assert unit_memory_limit(web, SERVICE) == cap
    assert web.check_output("systemctl is-active promtail.service") == "active"
    assert redis.check_output(f"{REDIS_CLI} CONFIG GET timeout").split()[1] == "0"
    assert redis.check_output("systemctl is-active redis-server@broker.service") == "active"

    # and the run after that changes nothing
    again = _rerun([web_name, redis_name])
    for name in (web_name, redis_name):
        assert any(line.startswith(name) and "changed=0" in line for line in again.splitlines()), again[-3000:]
