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
And before any of it: no managed unit on any host waits for a daemon-reload.
"""
from __future__ import annotations

import shlex

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run, changed_tasks
from flaskfleet_testlib.cgroups import unit_memory_limit
from flaskfleet_testlib.engine import instance_host
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.service import curl_in, gunicorn_workers, supervise_registry, wait_for
from flaskfleet_testlib.stack import SERVICE, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or not group_hosts("redis") or
                                group_hosts("redis")[0] in group_hosts("flask_web"),
                                reason="the fleet scenario: Redis on a host of its own")

REDIS_CLI = ("REDISCLI_AUTH=$(cat /etc/redis/flaskfleet-admin.secret) redis-cli --user flaskfleet-admin"
             " -s /run/redis-broker/redis-server.sock")


def _grep(host, pattern, path):
    """Whether a line of the file matches (grep -E)."""
    return host.run(f"grep -qE {shlex.quote(pattern)} {shlex.quote(path)}").rc == 0


def _headers(host):
    return curl_in(host, "/healthz", "-o /dev/null", "-D -").stdout.lower()


def _rerun(names):
    proc = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", ",".join(names)], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_every_managed_unit_runs_as_its_files_say():
    """After the scenario's converges, no unit of the registry (or its listener) on any host waits for a
    daemon-reload: systemd runs what the files say, and a rerun has nothing to start."""
    stale = []
    for name in group_hosts():
        host = instance_host(name)
        registry = supervise_registry(host)
        units = [f"{service}.{kind}" for service, entry in sorted(registry["services"].items())
                 if entry.get("backend") == "systemd" for kind in ("service", "socket")]
        assert units, registry
        shown = host.check_output("systemctl show -p Id -p LoadState -p NeedDaemonReload " + " ".join(units))
        for block in shown.split("\n\n"):
            props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if props.get("LoadState") == "loaded" and props.get("NeedDaemonReload") != "no":
                stale.append(f"{name}: {props['Id']}")
    assert not stale, stale


def test_a_rerun_repairs_what_was_changed_by_hand():
    web_name, redis_name = group_hosts("flask_web")[0], group_hosts("redis")[0]
    web, redis = instance_host(web_name), instance_host(redis_name)
    unit, config = f"/etc/systemd/system/{SERVICE}.service", f"/etc/flaskfleet/{SERVICE}.conf.py"
    caps = f"/etc/systemd/system/{SERVICE}.service.d/50-flaskfleet-memory.conf"
    site, promtail, broker = "/etc/nginx/sites-available/app.conf", "/etc/promtail/promtail.yml", "/etc/redis/redis-broker.conf"

    # By hand: a header in the site (reloaded), one Gunicorn worker (reloaded), another restart
    # delay in the unit file and another cap in its drop-in (no daemon-reload), a debug log level
    # for Promtail, a line in Redis's file and a server-side idle timeout set live. Each marker is seen first: the test can fail.
    web.check_output("sed -i 's/^\\(\\s*\\)add_header X-Request-ID/\\1add_header X-Drift by-hand always;\\n&/'"
                     f" {site} && nginx -t -q && systemctl reload nginx")
    assert wait_for(lambda: "x-drift: by-hand" in _headers(web), timeout=20) is not None
    web.check_output(f"sed -i 's/^workers = .*/workers = 1/' {config} && systemctl reload {SERVICE}")
    assert wait_for(lambda: len(gunicorn_workers(web)) == 1, timeout=60) is not None
    web.check_output(f"sed -i 's/^RestartSec=.*/RestartSec=7/' {unit} && sed -i 's/^MemoryMax=.*/MemoryMax=1234M/' {caps}")
    assert web.check_output(f"systemctl show -P NeedDaemonReload {SERVICE}") == "yes"
    web.check_output(f"sed -i 's/^  log_level: info/  log_level: debug/' {promtail}")
    assert _grep(web, "^  log_level: debug", promtail)
    # the app's home and its user, which a rerun looks at before it sets either (it does only on a difference)
    web.check_output("chmod 0700 /srv/app && usermod -s /bin/bash app")
    assert web.check_output("stat -c %a /srv/app") == "700" and web.check_output("getent passwd app").endswith(":/bin/bash")
    # Promtail's account and positions directory (one call that changes only what differs): out of adm, whose
    # files it reads, and its directory closed
    web.check_output("gpasswd -d promtail adm && chmod 0700 /var/lib/promtail")
    assert "adm" not in web.check_output("id -nG promtail").split() and web.check_output("stat -c %a /var/lib/promtail") == "700"
    redis.check_output(f"echo '# changed by hand' >> {broker}")
    redis.check_output(f"{REDIS_CLI} CONFIG SET timeout 300")
    assert redis.check_output(f"{REDIS_CLI} CONFIG GET timeout").split()[1] == "300"

    _rerun([web_name, redis_name])

    # every file is the managed one again, and what serves runs it
    assert not _grep(web, "X-Drift", site) and "x-drift" not in _headers(web)
    workers = int(web.check_output(f"sed -n 's/^workers = //p' {config}"))
    assert workers >= 2
    assert wait_for(lambda: len(gunicorn_workers(web)) == workers, timeout=60) is not None, gunicorn_workers(web)
    cap_mb = int(web.check_output(f"sed -n 's/^MemoryMax=\\([0-9]*\\)M$/\\1/p' {caps}"))
    assert cap_mb != 1234 and not _grep(web, "^RestartSec=7$", unit)
    assert web.check_output(f"systemctl show -P NeedDaemonReload {SERVICE}") == "no"
    assert unit_memory_limit(web, SERVICE) == cap_mb * 1024 * 1024
    assert not _grep(web, "^  log_level: debug", promtail)
    assert web.check_output("systemctl is-active promtail.service") == "active"
    assert web.check_output("stat -c %a /srv/app") == "750"
    assert web.check_output("getent passwd app").endswith(":/usr/sbin/nologin")
    assert "adm" in web.check_output("id -nG promtail").split() and web.check_output("stat -c %a /var/lib/promtail") == "750"
    assert not _grep(redis, "changed by hand", broker)
    assert redis.check_output("systemctl is-active redis-server@broker.service") == "active"
    assert redis.check_output(f"{REDIS_CLI} CONFIG GET timeout").split()[1] == "0"

    # and the run after that changes nothing: each file was left as the roles write it
    again = _rerun([web_name, redis_name])
    for name in (web_name, redis_name):
        assert any(line.startswith(name) and "changed=0" in line for line in again.splitlines()), changed_tasks(again)
