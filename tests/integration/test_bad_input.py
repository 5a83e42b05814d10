# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input fails in the preflight, naming the variable, before anything changes. No container needed.

The fleet playbook runs in check mode against the controller itself (a
connection-local host in flask_web, the Molecule scenarios' settings): the
preflight play is all that runs there, since check mode stops a host this
collection never converged right after it (one good case proves that). The
bad nginx snippet, which only `nginx -t` can refuse, is tested against a
converged container (molecule/resources/tests/test_bad_input.py).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not pathlib.Path("/etc/debian_version").exists(),
                                reason="the preflight accepts Debian 12/13 hosts only: run on a Debian controller")

CASES = {
    "wrong type": ({"gunicorn_worker_memory_mb": "lots"}, "gunicorn_worker_memory_mb"),
    "unknown worker class": ({"gunicorn_worker_class": "eventlet"}, "gunicorn_worker_class"),
    "zero workers": ({"gunicorn_workers": 0}, "gunicorn_workers"),
    "negative min workers": ({"gunicorn_min_workers": -2}, "gunicorn_min_workers"),
    "port out of range": ({"nginx_https_port": 70000}, "nginx_https_port"),
    "malformed CIDR": ({"nginx_trusted_proxies": ["10.0.0.0/33"]}, "nginx_trusted_proxies"),
    "certificate without key": ({"nginx_tls_certificate_src": str(ROOT / "LICENSE")}, "nginx_tls_key"),
    "wsgi not a target": ({"flask_app_wsgi": "flaskfleet_demo:app.wsgi_app"}, "flask_app_wsgi"),
    "no WSGI entry on a web host": ({"flask_app_wsgi": ""}, "flask_app_wsgi"),
    "factory with a non-literal argument": ({"flask_app_wsgi": "flaskfleet_demo:create_app(os.environ)"}, "flask_app_wsgi"),
    "caps below the plan": ({"gunicorn_memory_max_mb": 64}, "gunicorn_memory_max_mb"),
    "flask debug on": ({"flask_app_env": {"FLASK_DEBUG": "1"}}, "FLASK_DEBUG"),
    "secret with a NUL": ({"flask_app_secrets": {"TOKEN": "a\u0000b"}}, "flask_app_secrets"),
    "secret that is a mapping": ({"flask_app_secrets": {"TOKEN": {"a": 1}}}, "flask_app_secrets"),
    "unknown supervisor": ({"gunicorn_supervisor": "runit"}, "gunicorn_supervisor"),
    "one release kept": ({"flask_app_keep_releases": 1}, "flask_app_keep_releases"),
    "release command without a time": ({"flask_app_release_command": "flask db upgrade", "flask_app_release_command_timeout": 0},
                                       "flask_app_release_command_timeout"),
    "stapling without resolvers": ({"nginx_ocsp_stapling": True, "nginx_tls_certificate_path": "/etc/hostname",
                                    "nginx_tls_key_path": "/etc/hostname"}, "nginx_resolvers"),
    "an unknown TLS source": ({"nginx_tls_source": "letsencrypt"}, "nginx_tls_source"),
    "ACME over plain HTTP": ({"nginx_tls_source": "acme", "nginx_acme_directory": "http://ca.example.test/dir"},
                             "nginx_acme_directory"),
    "a wildcard name through HTTP-01": ({"nginx_tls_source": "acme", "nginx_server_names": ["*.example.test"]},
                                        "nginx_server_names"),
    "OCSP stapling with Let's Encrypt": ({"nginx_tls_source": "acme", "nginx_ocsp_stapling": True,
                                          "nginx_resolvers": ["192.0.2.53"]}, "nginx_ocsp_stapling"),
    "half an external account binding": ({"nginx_tls_source": "acme", "nginx_acme_eab_kid": "kid-1"}, "nginx_acme_eab_kid"),
    "an ACME owner that is no web host of these names": ({"nginx_tls_source": "acme", "nginx_acme_owner": "elsewhere"},
                                                         "nginx_acme_owner"),
    "an ACME share port out of range": ({"nginx_tls_source": "acme", "nginx_acme_share_port": 70000}, "nginx_acme_share_port"),
    "no unix sockets": ({"gunicorn_address_families": ["AF_INET"]}, "gunicorn_address_families"),
    "visibility timeout below the task time limit": ({"celery_visibility_timeout": 30}, "celery_visibility_timeout"),
    "no Redis password": ({"redis_app_password": ""}, "redis_app_password"),
    "Celery app not a module path": ({"celery_app": "flaskfleet_demo.tasks:celery()"}, "celery_app"),
    "a batch of no host": ({"flaskfleet_serial": 0}, "flaskfleet_serial"),
    "a batch hook by a relative path": ({"flaskfleet_batch_pre_tasks": "hooks/drain.yml"}, "flaskfleet_batch_pre_tasks"),
    "cache without an eviction policy": ({"redis_cache_enabled": True, "redis_cache_policy": "lru"}, "redis_cache_policy"),
    "no host runs beat": ({"celery_beat_host": "elsewhere"}, "celery_beat_host"),
    "services over the commit limit": ({"flaskfleet_memory_commit_limit": 2}, "flaskfleet_memory_commit_limit"),
    "a commit limit that is not a percentage": ({"flaskfleet_memory_commit_limit": 0}, "flaskfleet_memory_commit_limit"),
    "a memory reserve that is not MB": ({"flaskfleet_memory_reserved_mb": "lots"}, "flaskfleet_memory_reserved_mb"),
    "Redis larger than the host": ({"redis_broker_maxmemory_mb": 10_000_000}, "redis_broker_maxmemory_mb"),
    "retention in minutes": ({"loki_retention_period": "90m"}, "loki_retention_period"),
    "retention without its delete-request store": ({"loki_delete_request_store": ""}, "loki_delete_request_store"),
    "Loki on every address": ({"loki_listen_address": "0.0.0.0"}, "loki_listen_address"),
    "Loki on a public address": ({"loki_listen_address": "203.0.113.10"}, "loki_listen_address"),
    "Redis on a public address": ({"redis_listen_address": "203.0.113.10"}, "redis_listen_address"),
    "Redis on every address": ({"redis_bind_addresses": ["127.0.0.1", "0.0.0.0"]}, "redis_bind_addresses"),
    "a host name as a Loki client": ({"loki_extra_clients": ["grafana.example.com"]}, "loki_extra_clients"),
    "malformed Loki checksum": ({"loki_sha256": "abc123"}, "loki_sha256"),
    "Promtail version not pinned": ({"promtail_version": "latest"}, "promtail_version"),
    "artifact directory without SHA256SUMS": ({"promtail_artifact_dir": str(ROOT / "demo")}, "promtail_artifact_dir"),
    # a type only Promtail's argument spec refuses: validated in the preflight since its own entry point
    "a Promtail switch that is not a boolean": ({"promtail_supervisord_logs": "maybe"}, "promtail_supervisord_logs"),
    "a request id as a label": ({"promtail_sources": [{"name": "app", "kind": "journal", "units": ["gunicorn-*.service"],
                                                       "labels": {"request_id": "x"}}]}, "promtail_sources"),
}


def _check(inventory, extra, facts):
    # The controller's facts are gathered by the first run and read from a fact
    # cache by the others (smart gathering): the same host, the same facts.
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_GATHERING="smart", ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(facts))
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--check", "playbooks/site.yml",
                           "-e", json.dumps(extra)], env=env, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def outcomes(inventory, tmp_path_factory):
    cases = {**{name: extra for name, (extra, _var) in CASES.items()}, "good input": {},
             # a public address named on purpose, with the explicit consent
             "public addresses allowed": {"redis_listen_address": "203.0.113.10", "loki_listen_address": "203.0.113.10",
                                          "flaskfleet_allow_public_listen": True}}
    facts = tmp_path_factory.mktemp("facts")
    # the good case first: it fills the fact cache the others read
    done = {"good input": _check(inventory, cases.pop("good input"), facts)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        done.update(zip(cases, pool.map(lambda extra: _check(inventory, extra, facts), cases.values())))
    return done


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_the_preflight_naming_the_variable(outcomes, case):
    proc = outcomes[case]
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert CASES[case][1] in output, output[-3000:]
    # nothing after the preflight play ran
    assert not any(f"PLAY [{play}" in output for play in ("Redis hosts", "App hosts", "Loki host", "Every host")), output[-3000:]
    assert "changed=0" in output, output[-3000:]


def test_good_input_passes_and_check_mode_stops_on_a_host_never_converged(outcomes):
    proc = outcomes["good input"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "check mode stops here" in output, output[-3000:]
    after_preflight = output.split("PLAY [Redis hosts", 1)[-1]
    assert "TASK [flaskfleet.stack.redis" not in after_preflight, output[-3000:]
    assert "TASK [flaskfleet.stack.flask_app" not in after_preflight, output[-3000:]
    assert "TASK [flaskfleet.stack.loki" not in after_preflight, output[-3000:]
    assert "TASK [flaskfleet.stack.promtail" not in after_preflight, output[-3000:]


def test_a_public_address_is_accepted_when_named_with_the_explicit_consent(outcomes):
    proc = outcomes["public addresses allowed"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "check mode stops here" in output, output[-3000:]
    # the refusal of the same address without the consent is a case of the table above
    assert "flaskfleet_allow_public_listen" in outcomes["Redis on a public address"].stdout


# The zips from a release URL (the roles' default: the upstream release page), served here by a local
# HTTP server from copies of the artifacts: the good case fetches Loki's zip into the controller's cache
# and passes; the bad ones are refused in the preflight, naming what to fix, before any host changes.
def _release_dirs(root):
    artifacts = pathlib.Path(os.environ.get("FLASKFLEET_ARTIFACTS") or ROOT.parent / "shared" / "artifacts")
    sums = (artifacts / "SHA256SUMS").read_text()
    for name, listed in (("good", sums), ("no-line", "".join(line for line in sums.splitlines(True) if "loki" not in line)),
                         ("no-sums", None)):
        (root / name).mkdir()
        (root / name / "loki-linux-amd64.zip").symlink_to(artifacts / "loki-linux-amd64.zip")
        if listed is not None:
            (root / name / "SHA256SUMS").write_text(listed)


# case: (extra variables, the served directory, what the refusal says; None: passes)
URL_CASES = {
    "good": ({}, "good", None),
    "a zip that does not match loki_sha256": ({"loki_sha256": "0" * 64}, "good", "was refused: its sha256 must be " + "0" * 64),
    "a release without SHA256SUMS": ({}, "no-sums", "Check loki_version and loki_release_url"),
    "SHA256SUMS without the zip's line": ({}, "no-line", "has no sha256 line for loki-linux-amd64.zip"),
}


@pytest.fixture(scope="module")
def url_outcomes(inventory, tmp_path_factory):
    import functools
    import http.server
    import threading
    served = tmp_path_factory.mktemp("releases")
    _release_dirs(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache, facts = tmp_path_factory.mktemp("zip-cache"), tmp_path_factory.mktemp("url-facts")
    try:
        return {name: _check(inventory, {"loki_artifact_dir": "", "release_zip_cache_dir": str(cache),
                                         "loki_release_url": f"http://127.0.0.1:{server.server_port}/{served_dir}",
                                         **extra}, facts)
                for name, (extra, served_dir, _text) in URL_CASES.items()}, cache
    finally:
        server.shutdown()


@pytest.mark.parametrize("case", sorted(URL_CASES))
def test_a_release_url_is_read_and_its_zip_checked_on_the_controller(url_outcomes, case):
    outcomes, cache = url_outcomes
    proc = outcomes[case]
    output = proc.stdout + proc.stderr
    expected = URL_CASES[case][2]
    if expected is None:
        assert proc.returncode == 0, output[-3000:]
        assert "check mode stops here" in output, output[-3000:]
        assert "TASK [flaskfleet.stack.release_zip : Download loki-linux-amd64.zip]" in output, output[-3000:]
        assert list(cache.rglob("loki-linux-amd64.zip")), sorted(cache.rglob("*"))
        return
    assert proc.returncode != 0, output[-3000:]
    assert expected in output, output[-3000:]
    assert not any(f"PLAY [{play}" in output for play in ("Redis hosts", "App hosts", "Loki host", "Every host")), output[-3000:]


# Two web hosts with ACME (both the controller): what only a fleet can get wrong. Each case's second
# host differs from the first by the variables given; the variable named must be in the refusal.
PAIR_CASES = {
    "names that overlap without being the same set": (
        {"nginx_server_names": ["app.example.test", "www.example.test"]},
        {"nginx_server_names": ["www.example.test", "api.example.test"]}, "nginx_server_names"),
    "a peer asking another CA than its owner": (
        {}, {"nginx_acme_directory": "https://ca.example.test/dir"}, "nginx_acme_directory"),
}


def _pair_inventory(inventory, directory, first, second):
    data = yaml.safe_load(pathlib.Path(inventory).read_text())
    host = data["flask_web"]["hosts"]["controller"]
    acme = {"nginx_tls_source": "acme", "nginx_server_names": ["app.example.test", "www.example.test"]}
    data["flask_web"]["hosts"] = {"controller": {**host, **acme, **first}, "controller2": {**host, **acme, **second}}
    path = directory / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def pair_outcomes(inventory, tmp_path_factory):
    facts = tmp_path_factory.mktemp("pair-facts")
    return {name: _check(_pair_inventory(inventory, tmp_path_factory.mktemp("pair"), first, second), {}, facts)
            for name, (first, second, _var) in PAIR_CASES.items()}


@pytest.mark.parametrize("case", sorted(PAIR_CASES))
def test_acme_web_hosts_behind_one_name_are_refused_when_they_disagree(pair_outcomes, case):
    proc = pair_outcomes[case]
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert PAIR_CASES[case][2] in output and "fatal: [controller2]" in output, output[-3000:]
    assert not any(f"PLAY [{play}" in output for play in ("Redis hosts", "App hosts", "Loki host", "Every host")), output[-3000:]
