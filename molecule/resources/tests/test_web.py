# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The web host, seen from outside: what Flask sees through nginx, TLS, caps, hardening."""
from __future__ import annotations

import json
import re
import subprocess
import time

from ansible_collections.flaskfleet.stack.plugins.filter.plan import celery_plan, gunicorn_plan
import pytest
from flaskfleet_testlib.cgroups import unit_memory_limit, unit_oom_kills
from flaskfleet_testlib.service import curl_in, gunicorn_workers, healthz_ok, main_pid, wait_for
from flaskfleet_testlib.stack import CAPPED_UNIT, SERVICE, SITE_NAME, SUPERVISOR, SUPERVISORD_OVERHEAD_MB

SPOOFED = "203.0.113.66"


def whoami(host, *options):
    result = curl_in(host, "/whoami", *options)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


# Headers a client might send to pose as a proxy: none may reach Flask.
CLEARED = ("X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Server", "X-Url-Scheme", "Front-End-Https",
           "X-Original-URL", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "X-Cluster-Client-IP")
# What the secrets of the test inventory hold for FLASKFLEET_DEMO_ECHO_PROBE.
PROBE = "` $( ) \" ' \\ % ; # with  spaces \t tab\nsecond line: Grüße – 東京 ✓ $HOME ${X}\\"


def test_flask_sees_the_real_client_scheme_and_host(host):
    seen = whoami(host, f"-H 'X-Forwarded-For: {SPOOFED}'", "-H 'X-Forwarded-Proto: http'",
                  "-H 'X-Forwarded-Host: evil.example'")
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["scheme"] == "https"
    assert seen["host"] == SITE_NAME
    assert seen["url_root"] == f"https://{SITE_NAME}/"
    assert seen["external_url"] == f"https://{SITE_NAME}/whoami"
    assert seen["debug"] is False


def test_request_id_is_nginx_own_and_spoofed_proxy_headers_are_cleared(host):
    spoofed = [f"-H '{name}: on'" for name in CLEARED]
    seen = whoami(host, "-H 'X-Request-ID: chosen-by-the-client'", "-H 'X-Forwarded-Port: 1'", *spoofed)
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert re.fullmatch(r"[0-9a-f]{32}", headers.get("x-request-id", "")), headers
    assert headers["x-forwarded-port"] == "443"
    assert not set(headers) & {name.lower() for name in CLEARED}, headers
    # the release header is for the deploy's health check, not for clients
    assert "x-flaskfleet-release" not in curl_in(host, "/healthz", "-D -", "-o /dev/null").stdout.lower()


def test_settings_and_secrets_reach_the_app_byte_for_byte(host):
    result = curl_in(host, "/env/FLASKFLEET_DEMO_ECHO_PROBE")
    assert result.rc == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["value"] == PROBE
    assert bytes.fromhex(seen["utf8_hex"]) == PROBE.encode()


def test_app_factory_form(instance, host):
    index = json.loads(curl_in(host, "/").stdout)
    # the Debian 13 platform serves flaskfleet_demo:create_app({...}) (molecule host_vars)
    expected = "from-the-factory-call" if instance.endswith("debian13") else None
    assert index["factory_arg"] == expected


def test_from_the_controller_through_the_published_port(instance, published):
    port = published[443]
    out = subprocess.run(
        ["curl", "-sS", "-k", "--max-time", "20", "--resolve", f"{SITE_NAME}:{port}:127.0.0.1",
         "-H", f"X-Forwarded-For: {SPOOFED}", f"https://{SITE_NAME}:{port}/whoami"],
        check=True, capture_output=True, text=True).stdout
    seen = json.loads(out)
    assert seen["scheme"] == "https"
    assert seen["host"] == SITE_NAME
    assert seen["remote_addr"] != SPOOFED
    assert re.fullmatch(r"[0-9.]+|[0-9a-f:]+", seen["remote_addr"]), seen


def test_http_redirects_to_https_with_308(host):
    result = curl_in(host, "/whoami?x=1", "-o /dev/null", "-w '%{http_code} %{redirect_url}'", scheme="http")
    assert result.stdout == f"308 https://{SITE_NAME}/whoami?x=1"


def test_security_headers(host):
    headers = curl_in(host, "/healthz", "-D -", "-o /dev/null").stdout.lower()
    assert re.search(r"^strict-transport-security: max-age=\d{7,}", headers, re.M), headers
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options:" in headers
    assert "referrer-policy:" in headers
    assert not re.search(r"^server: nginx/", headers, re.M), "server_tokens must be off"


def _handshake(host, flag, cipher="DEFAULT@SECLEVEL=0"):
    cipher_opt = f"-cipher '{cipher}'" if flag != "-tls1_3" else ""
    return host.run(f"openssl s_client -connect 127.0.0.1:443 -servername {SITE_NAME} {flag} {cipher_opt} </dev/null")


def test_only_tls_1_2_and_1_3(host):
    # The client offers TLS 1.0/1.1 with every cipher it has: the server must
    # refuse the protocol version itself (alert 70), not fail on ciphers.
    for flag in ("-tls1", "-tls1_1"):
        result = _handshake(host, flag)
        assert result.rc != 0, f"{flag} handshake must fail"
        assert "alert protocol version" in result.stderr + result.stdout, result.stderr
    for flag in ("-tls1_2", "-tls1_3"):
        result = _handshake(host, flag)
        assert result.rc == 0, result.stderr
        assert "Cipher is" in result.stdout


# A second nginx on the host with the site's TLS profile, changed one setting
# at a time: ciphers opened to everything (ssl_protocols alone must still
# refuse TLS 1.1), then ssl_protocols opened too (the probe itself can
# succeed). So the refusal above is the profile's ssl_protocols.
PROBE_CONF = """events {}
http {
    server {
        listen 127.0.0.1:8441 ssl;
        ssl_certificate /etc/nginx/tls/app.crt;
        ssl_certificate_key /etc/nginx/tls/app.key;
        include /tmp/tls-probe/protocols-only.conf;
    }
    server {
        listen 127.0.0.1:8442 ssl;
        ssl_certificate /etc/nginx/tls/app.crt;
        ssl_certificate_key /etc/nginx/tls/app.key;
        include /tmp/tls-probe/all-open.conf;
    }
}
"""


def test_ssl_protocols_itself_refuses_tls_1_1(host):
    opened = "s/^ssl_ciphers .*/ssl_ciphers DEFAULT:@SECLEVEL=0;/"
    host.run("rm -rf /tmp/tls-probe && mkdir -p /tmp/tls-probe")
    host.run(f"sed -e '{opened}' -e 's/ssl_session_cache shared:[A-Za-z]*:/ssl_session_cache shared:Probe:/'"
             " /etc/nginx/snippets/flaskfleet-tls.conf > /tmp/tls-probe/protocols-only.conf")
    host.run("sed -e 's/^ssl_protocols .*/ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;/' -e 's/shared:Probe:/shared:Probe2:/'"
             " /tmp/tls-probe/protocols-only.conf > /tmp/tls-probe/all-open.conf")
    host.run(f"cat > /tmp/tls-probe/nginx.conf <<'EOF'\n{PROBE_CONF}EOF")
    started = host.run("nginx -c /tmp/tls-probe/nginx.conf -g 'pid /tmp/tls-probe/nginx.pid; error_log /tmp/tls-probe/error.log;'")
    assert started.rc == 0, started.stderr
    try:
        probe = "openssl s_client -connect 127.0.0.1:{port} -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null"
        protocols_only = host.run(probe.format(port=8441))
        assert protocols_only.rc != 0
        assert "alert protocol version" in protocols_only.stderr + protocols_only.stdout, protocols_only.stderr
        all_open = host.run(probe.format(port=8442))
        assert all_open.rc == 0, all_open.stderr
        assert re.search(r"Protocol\s*:\s*TLSv1\.1", all_open.stdout), all_open.stdout
    finally:
        host.run("nginx -c /tmp/tls-probe/nginx.conf -g 'pid /tmp/tls-probe/nginx.pid;' -s quit; sleep 1; rm -rf /tmp/tls-probe")


def test_unknown_host_is_dropped(host):
    plain = curl_in(host, "/", name="unknown.example", scheme="http")
    assert plain.rc == 52, plain.stderr  # empty reply: nginx closed the connection (444)
    tls = curl_in(host, "/", name="unknown.example")
    assert tls.rc == 35, tls.stderr  # TLS handshake rejected for an unknown name


def test_static_files_come_from_nginx(host):
    result = curl_in(host, "/static/hello.txt", "-D /dev/stderr")
    assert result.stdout == "flaskfleet static ok\n"
    assert re.search(r"^cache-control: max-age=\d+", result.stderr.lower(), re.M), result.stderr


def test_worker_count_is_the_plan(host, facts):
    plan = gunicorn_plan(facts, workload="mixed", worker_memory_mb=150)
    assert len(gunicorn_workers(host)) == plan["workers"]
    assert plan["workers"] > 1, "the plan should beat Gunicorn's default of one worker"


def test_memory_cap_is_the_plan_and_the_kernel_enforces_it(host, facts):
    plan = gunicorn_plan(facts, workload="mixed", worker_memory_mb=150)
    cap_mb = plan["memory_max_mb"]
    if SUPERVISOR == "supervisord":
        # supervisor.service holds every program: Gunicorn, and on a worker
        # host the Celery worker (its plan, 60 MB children) and beat (300 MB).
        cap_mb += SUPERVISORD_OVERHEAD_MB
        if host.file("/etc/supervisor/conf.d/celery-app-default.conf").exists:
            cap_mb += celery_plan(facts, workload="mixed", child_memory_mb=60)["memory_max_mb"] + 300
    cap = cap_mb * 1024 * 1024
    assert int(host.check_output(f"systemctl show -P MemoryMax {CAPPED_UNIT}")) == cap
    assert unit_memory_limit(host, CAPPED_UNIT) == cap


@pytest.mark.skipif(SUPERVISOR != "supervisord", reason="memmon is the supervisord backend's soft cap")
def test_leak_past_the_soft_cap_restarts_the_program(host, facts):
    plan = gunicorn_plan(facts, workload="mixed", worker_memory_mb=150)
    master = main_pid(host)
    kills_before = unit_oom_kills(host, CAPPED_UNIT)
    # One worker grows past the soft cap (the whole tree's RSS counts), well
    # below the kernel's limit: memmon, sampling every 5 s, restarts the program.
    result = curl_in(host, f"/leak?mb={plan['memory_high_mb'] - 100}", "-o /dev/null", "-w '%{http_code}'")
    assert result.stdout == "200", result.stderr
    assert wait_for(lambda: main_pid(host) not in ("0", master), 30) is not None, "memmon did not restart the program"
    assert wait_for(lambda: healthz_ok(host), 30) is not None, "the program did not serve again on its own"
    assert f"Restarting {SERVICE}" in host.file(f"/var/log/supervisor/{SERVICE}-memmon.log").content_string
    assert f"stopped: {SERVICE}" in host.file("/var/log/supervisor/supervisord.log").content_string
    assert unit_oom_kills(host, CAPPED_UNIT) == kills_before, "the kernel, not memmon, acted"


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="the sandbox is the systemd backend's; supervisord programs run unsandboxed")
def test_gunicorn_unit_is_hardened(host):
    out = host.run(f"systemd-analyze security --no-pager {SERVICE}.service").stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    exposure = float(match.group(1))
    print(f"systemd-analyze security {SERVICE}: exposure {exposure}")
    assert exposure <= 2.0


def test_open_files_limit_is_sized_for_the_plan(host, facts):
    plan = gunicorn_plan(facts, workload="mixed", worker_memory_mb=150)
    for pid in gunicorn_workers(host):
        limits = host.file(f"/proc/{pid}/limits").content_string
        soft = re.search(r"^Max open files\s+(\d+)", limits, re.M)
        assert soft and int(soft.group(1)) == plan["nofile_limit"], limits


def test_a_killed_worker_does_not_stop_the_service(host):
    # cgroup v2 only: systemd's reaction to a kernel OOM kill in the unit.
    # Here (cgroup v1) the property is what can be proven; the OOM test
    # below shows the kill and the recovery.
    unit = SERVICE if SUPERVISOR == "systemd" else "supervisor.service"
    assert host.check_output(f"systemctl show -P OOMPolicy {unit}") == "continue"


def test_socket_admits_nginx_only(host):
    sock = "/run/gunicorn-app-proxy/gunicorn.sock"
    assert host.check_output(f"stat -c '%a %U %G' {sock}") == "770 app app"
    # Gunicorn chowns the socket to the app: the proxy's group gets in by the directory's default ACL
    assert "group:www-data:rwx" in host.check_output(f"getfacl -p {sock}")
    probe = f"curl -s -o /dev/null -w '%{{http_code}}' --unix-socket {sock} http://localhost/healthz"
    assert host.run(f"runuser -u www-data -- {probe}").stdout == "200"
    assert host.run(f"runuser -u nobody -- {probe}").stdout != "200"


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="the sandbox is the systemd backend's")
def test_one_hardening_relaxation_keeps_the_rest(instance, host):
    props = dict(line.split("=", 1) for line in host.check_output(
        f"systemctl show -p MemoryDenyWriteExecute,NoNewPrivileges,ProtectSystem,RestrictAddressFamilies {SERVICE}").splitlines())
    # molecule host_vars: Debian 13 runs with gunicorn_memory_deny_write_execute: false
    assert props["MemoryDenyWriteExecute"] == ("no" if instance.endswith("debian13") else "yes")
    assert (props["NoNewPrivileges"], props["ProtectSystem"]) == ("yes", "strict")
    assert set(props["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_nginx_user_cannot_read_the_env_file(host):
    env_file = host.file("/etc/flaskfleet/app.env")
    assert env_file.mode == 0o640 and env_file.user == "root" and env_file.group == "app"
    assert "app" not in host.check_output("id -nG www-data").split()
    denied = host.run("runuser -u www-data -- cat /etc/flaskfleet/app.env")
    assert denied.rc != 0 and "Permission denied" in denied.stderr
    # ... yet nginx reaches the socket, and the app's own user reads the file
    assert host.run("runuser -u app -- test -r /etc/flaskfleet/app.env").rc == 0
    assert host.file("/run/gunicorn-app-proxy/gunicorn.sock").is_socket


def test_access_log_is_json(host):
    request_id = whoami(host)["headers"]["X-Request-Id"]
    curl_in(host, "/healthz?probe=jsonlog", "-A 'agent \"with\" quotes'")
    time.sleep(1)
    if SUPERVISOR == "systemd":
        lines = host.check_output(f"journalctl -u {SERVICE} -o cat --no-pager -n 50").splitlines()
    else:
        lines = host.check_output(f"tail -n 50 /var/log/supervisor/{SERVICE}.log").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    probe = [r for r in records if r.get("query") == "probe=jsonlog"]
    assert probe, lines
    assert probe[-1]["status"] == 200
    assert probe[-1]["remote_addr"] == "127.0.0.1"
    assert probe[-1]["user_agent"] == 'agent "with" quotes'
    # Gunicorn logs the id nginx made for the request, the one Flask saw
    assert [r for r in records if r.get("request_id") == request_id and r.get("path") == "/whoami"], lines


@pytest.mark.skipif(SUPERVISOR != "systemd", reason="supervisord writes program output to a file, not the journal")
def test_journal_keeps_every_access_line_under_load(instance, host):
    if not instance.endswith("debian12"):
        pytest.skip("the load runs against one platform")
    assert host.check_output(f"systemctl show -P LogRateLimitIntervalUSec {SERVICE}") == "0"
    host.run("grep -q app.example.test /etc/hosts || echo '127.0.0.1 app.example.test' >> /etc/hosts")
    assert host.run("command -v ab || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils").rc == 0
    marker = f"burst{int(time.time())}"
    # journald's default: 10000 lines per 30 s per service, then drops
    requests = 12000
    out = host.check_output(f"ab -q -k -n {requests} -c 16 'https://app.example.test/healthz?{marker}'")
    # ab counts a body of another length (another worker's pid) as "failed": count the answers instead
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    served = int(re.search(r"Complete requests:\s+(\d+)", out).group(1)) - int(non_2xx.group(1) if non_2xx else 0)
    rate = re.search(r"Requests per second:\s+([0-9.]+)", out).group(1)
    time.sleep(2)
    logged = int(host.check_output(f"journalctl -u {SERVICE} -o cat --no-pager | grep -c '{marker}' || true"))
    print(f"journal under load: {served} requests served at {rate} req/s, {logged} access lines in the journal")
    assert logged == served == requests
