# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Certificates from ACME, against a real ACME server: Pebble (Let's Encrypt's test server, from
Debian's package) runs on the Redis host as a systemd unit this module makes. The first web host
switches to `nginx_tls_source: acme`: certbot orders through its port 80, nginx serves on 443 a
chain that verifies against Pebble's issuing root for exactly the names asked; a rerun orders
nothing; an added name orders exactly once; certbot's own timer unit renews (Pebble issues 30-day
certificates, due at once for certbot 2.1 and 4.0) and nginx serves the new serial with its master
kept and no failed request under load; a failed renewal leaves certbot.service failed and the
diagnosis names it; going back to the self-signed source removes the lineage and its renewal.

Two trusts, as in production: certbot trusts Pebble's HTTPS listener through the collection's
extra-CA option (ca_certificates_extra_files); the test's client verifies what nginx serves
against Pebble's root (/roots/0, new at every Pebble start).
"""
from __future__ import annotations

import json
import time

import pytest
from flaskfleet_testlib.ansible_cli import ansible_run, changed_tasks, converge
from flaskfleet_testlib.engine import instance_host, published_port
from flaskfleet_testlib.https import Load
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.service import wait_for
from flaskfleet_testlib.stack import SITE_NAME, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd" or not group_hosts("redis"),
                                reason="scenario default (Pebble on the Redis host)")

NAMES = [SITE_NAME, f"www.{SITE_NAME}"]
MORE_NAMES = [*NAMES, f"api.{SITE_NAME}"]
ORDER = "Order the certificate from"
# Pebble by a second name: another directory URL, as staging and production are (the web host resolves it)
ALT_DIRECTORY_HOST = "pebble-alt.test"
PEBBLE_CONFIG = """{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
 "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem", "httpPort": 80, "tlsPort": 443,
 "ocspResponderURL": "", "externalAccountBindingRequired": false, "certificateValidityPeriod": 2592000}}"""
PEBBLE_UNIT = """[Unit]
Description=Pebble ACME test server
After=network.target
[Service]
Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
ExecStart=/usr/bin/pebble -config /etc/pebble/pebble-config.json
"""


def _resolve(host, key, names, to=None):
    """On host, /etc/hosts without its lines naming key, then (when to is given) a line giving names the
    address host finds for to. Podman bind-mounts the file: it is rewritten in place, not replaced."""
    line = ""
    if to:
        address = host.check_output(f"getent hosts {to} | cut -d' ' -f1")
        line = f"echo '{address} {' '.join(names)}' >> /tmp/hosts;"
    host.check_output(f"grep -v '{key}' /etc/hosts > /tmp/hosts; {line} cat /tmp/hosts > /etc/hosts")


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    """Pebble on the Redis host (its HTTPS listener's pair made here), the web host's names
    resolving to the web host for Pebble's validator, and the listener's CA on the controller."""
    name, web = group_hosts("redis")[0], group_hosts("flask_web")[0]
    host = instance_host(name)
    host.check_output("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pebble >/dev/null")
    host.check_output(
        "set -e; mkdir -p /etc/pebble; cd /etc/pebble;"
        " openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 -keyout ca.key -out ca.pem"
        " -subj '/CN=flaskfleet test Pebble listener CA' -addext basicConstraints=critical,CA:TRUE 2>/dev/null;"
        f" openssl req -new -nodes -newkey rsa:2048 -keyout key.pem -out server.csr -subj /CN={name} 2>/dev/null;"
        f" printf 'subjectAltName=DNS:{name},DNS:{ALT_DIRECTORY_HOST}\\nextendedKeyUsage=serverAuth\\n' > san.ext;"
        " openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256"
        " -extfile san.ext -out cert.pem 2>/dev/null")
    host.check_output(f"cat > /etc/pebble/pebble-config.json <<'EOF'\n{PEBBLE_CONFIG}\nEOF")
    host.check_output(f"cat > /etc/systemd/system/pebble.service <<'EOF'\n{PEBBLE_UNIT}EOF")
    # Pebble's validator resolves the names with the system resolver: they are the web host
    _resolve(host, SITE_NAME, MORE_NAMES, web)
    host.check_output("systemctl daemon-reload && systemctl restart pebble")
    assert wait_for(lambda: host.run(f"curl -sf --cacert /etc/pebble/ca.pem https://{name}:14000/dir").rc == 0, 30)
    assert "validity period of 2592000 seconds" in host.check_output("journalctl -u pebble -b --no-pager")
    # Pebble keeps its accounts in memory: one the web host registered with an earlier Pebble is unknown
    # to this one (certbot then fails with accountDoesNotExist)
    web_host = instance_host(web)
    web_host.check_output(f"rm -rf '/etc/letsencrypt/accounts/{name}:14000' '/etc/letsencrypt/accounts/{ALT_DIRECTORY_HOST}:14000'")
    _resolve(web_host, ALT_DIRECTORY_HOST, [ALT_DIRECTORY_HOST], name)
    ca = tmp_path_factory.mktemp("pebble") / "pebble-listener.crt"
    ca.write_text(host.file("/etc/pebble/ca.pem").content_string)
    yield {"host": host, "name": name, "ca": str(ca)}
    host.run("systemctl disable --now pebble; rm -f /etc/systemd/system/pebble.service; systemctl daemon-reload")
    web_host.run(f"rm -rf '/etc/letsencrypt/accounts/{name}:14000' '/etc/letsencrypt/accounts/{ALT_DIRECTORY_HOST}:14000'")
    _resolve(web_host, ALT_DIRECTORY_HOST, [])


@pytest.fixture
def acme_left_on_failure(request, pebble):
    """A test of this module that fails half-way leaves its web hosts on ACME (an owner, a peer and its
    fetch timer, the test's names): they go back to the self-signed source, so that the tests after it
    find the hosts as the scenario converged them, and fail only for their own faults."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        webs = ",".join(group_hosts("flask_web"))
        ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", webs,
                     "--tags", "ca_certificates,nginx", "-e", json.dumps({"ca_certificates_extra_files": [pebble["ca"]]})],
                    check=False)
        _point_names_at(pebble, group_hosts("flask_web")[0])


def _issued(pebble, since):
    """The certificates Pebble issued since a time of its host's clock (its log's issuance lines)."""
    return int(pebble["host"].check_output(
        f"journalctl -u pebble --since @{since} -o cat --no-pager | grep -c 'Issued certificate serial' || true") or 0)


def _served(web, root):
    """What nginx serves on 443 for the site's name: (serial, SAN names), and whether its chain
    verifies against Pebble's root (the verification runs on the web host itself)."""
    web.check_output(f"cat > /tmp/pebble-root.pem <<'EOF'\n{root}\nEOF")
    out = web.run(f"openssl s_client -connect 127.0.0.1:443 -servername {SITE_NAME} -CAfile /tmp/pebble-root.pem"
                  " -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial -ext subjectAltName")
    lines = [line.strip() for line in out.stdout.splitlines()]
    serial = next((line.split("=", 1)[1] for line in lines if line.startswith("serial=")), None)
    names = sorted(part.strip().removeprefix("DNS:") for line in lines if line.startswith("DNS:") for part in line.split(","))
    return serial, names


def _diagnose(name, tmp_path, warn_days):
    proc = ansible_run(["ansible-playbook", "playbooks/diagnose.yml", "--limit", name, "-e", json.dumps({
        "flaskfleet_diagnose_dir": str(tmp_path), "flaskfleet_diagnose_py_spy": False,
        "flaskfleet_diagnose_certificate_warn_days": warn_days})], check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return json.loads((tmp_path / "summary.json").read_text())[name]


def test_an_acme_certificate_is_issued_served_renewed_and_removed(pebble, acme_left_on_failure, tmp_path):
    name = group_hosts("flask_web")[0]
    web = instance_host(name)
    settings = {"nginx_tls_source": "acme", "nginx_server_names": NAMES,
                "nginx_acme_directory": f"https://{pebble['name']}:14000/dir",
                "ca_certificates_extra_files": [pebble["ca"]]}
    root = pebble["host"].check_output(f"curl -sf --cacert /etc/pebble/ca.pem https://{pebble['name']}:15000/roots/0")
    since = pebble["host"].check_output("date +%s")

    # --check: names the order a real run would make, orders nothing, changes nothing of TLS
    proc = converge(name, settings, "--tags", "nginx", "--check")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "a real run would order the certificate of" in proc.stdout, proc.stdout[-3000:]
    assert _issued(pebble, since) == 0
    assert web.run("test -e /etc/letsencrypt/renewal/app.conf").rc == 1

    # issued: the first run on a host without a certificate (nginx answers the challenge on port 80
    # while it serves the self-signed pair); the roles it needs, as the fleet test below runs them
    proc = converge(name, settings, "--tags", "ca_certificates,nginx")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert any(ORDER in task for task in changed_tasks(proc.stdout)), changed_tasks(proc.stdout)
    serial, names = _served(web, root)
    assert serial and names == sorted(NAMES), (serial, names)
    renewal = web.check_output("cat /etc/letsencrypt/renewal/app.conf")
    assert f"server = {settings['nginx_acme_directory']}" in renewal and "renew_hook = " in renewal, renewal
    assert web.check_output("systemctl is-enabled certbot.timer") == "enabled"

    # a rerun orders nothing (the CA's duplicate-certificate limit)
    proc = converge(name, settings, "--tags", "nginx")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not changed_tasks(proc.stdout), changed_tasks(proc.stdout)
    assert _served(web, root)[0] == serial
    assert _issued(pebble, since) == 1  # Pebble's own count: the first order, nothing since

    # a name added: exactly one new order, for the new set of names
    settings["nginx_server_names"] = MORE_NAMES
    proc = converge(name, settings, "--tags", "nginx")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sum(ORDER in task for task in changed_tasks(proc.stdout)) == 1, changed_tasks(proc.stdout)
    serial, names = _served(web, root)
    assert names == sorted(MORE_NAMES), names

    # another directory (as from staging to production; here the same Pebble by another name): the
    # lineage's renewal file pins the old one, so exactly one new order, from the new directory
    settings["nginx_acme_directory"] = f"https://{ALT_DIRECTORY_HOST}:14000/dir"
    proc = converge(name, settings, "--tags", "nginx")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sum(ORDER in task for task in changed_tasks(proc.stdout)) == 1, changed_tasks(proc.stdout)
    renewal = web.check_output("cat /etc/letsencrypt/renewal/app.conf")
    assert f"server = {settings['nginx_acme_directory']}" in renewal, renewal
    assert _issued(pebble, since) == 3  # the first order, the added name's, the new directory's
    moved, names = _served(web, root)
    assert moved not in (None, serial) and names == sorted(MORE_NAMES), (serial, moved, names)
    serial = moved

    # renewed by certbot's own unit, as its timer starts it: a 30-day certificate is due; nginx
    # reloads (its master stays) and serves the new serial, with no failed request meanwhile
    master = web.check_output("cat /run/nginx.pid")
    with Load([published_port(name)]) as load:
        load.wait_requests(20)
        began = time.monotonic()
        web.check_output("systemctl start certbot.service")
        renewed = wait_for(lambda: _served(web, root)[0] not in (None, serial), 30)
        load.wait_requests(40)
    measured = load.summary(began)
    assert renewed is not None, "nginx still serves the old certificate after certbot.service renewed it"
    assert web.check_output("systemctl show -P Result certbot.service") == "success"
    assert web.check_output("cat /run/nginx.pid") == master
    assert measured["failed_requests"] == 0, (measured, load.failures)
    renewed_serial, renewed_names = _served(web, root)
    assert renewed_names == sorted(MORE_NAMES)
    assert _issued(pebble, since) == 4  # and the renewal

    # a renewal that fails (the CA unreachable) leaves certbot.service failed, and the diagnosis
    # names it; a certificate within the warning's days of its end is named too (30-day ones here)
    pebble["host"].check_output("systemctl stop pebble")
    assert web.run("systemctl start certbot.service").rc != 0
    assert _served(web, root)[0] == renewed_serial  # the certificate of the last renewal, still served
    traps = _diagnose(name, tmp_path, 31)
    assert any(t.startswith("certbot.service: the last renewal failed") for t in traps), traps
    assert any(t.startswith("certificate app: expires in ") for t in traps), traps
    web.check_output("systemctl reset-failed certbot.service")

    # leaving ACME: nginx serves the self-signed pair again, and nothing renews the lineage
    proc = converge(name, {"ca_certificates_extra_files": [pebble["ca"]]}, "--tags", "nginx")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert web.run("test -e /etc/letsencrypt/renewal/app.conf || test -e /etc/letsencrypt/live/app").rc == 1
    assert _served(web, root)[0] is None  # the self-signed certificate does not verify against Pebble's root
    assert web.run(f"curl -sf -k --resolve {SITE_NAME}:443:127.0.0.1 https://{SITE_NAME}/healthz").rc == 0
    web.run("rm -f /usr/local/share/ca-certificates/flaskfleet/pebble-listener.crt && update-ca-certificates")


def _point_names_at(pebble, web):
    """Pebble's validator resolves the site's names to this web host."""
    _resolve(pebble["host"], SITE_NAME, MORE_NAMES, web)


def test_web_hosts_behind_one_name_share_one_order_whichever_host_validation_reaches(pebble, acme_left_on_failure, tmp_path):
    """Both web hosts with the same names from ACME: the owner (named by nginx_acme_owner: the second web
    host, Debian 13's certbot 4.0, where the test above runs Debian 12's 2.1) alone orders; Pebble's
    validation reaches the other one, its peer, which answers by asking the owner; the peer fetches the
    certificate from the owner's share listener. A rerun orders and fetches nothing; the owner's renewal
    reaches the peer by the peer's own fetch unit (as its timer starts it); a rebuilt peer orders nothing."""
    webs = group_hosts("flask_web")
    if len(webs) < 2:
        pytest.skip("two web hosts")
    peer, owner = webs[:2]
    hosts = {name: instance_host(name) for name in (owner, peer)}
    # the test before left Pebble stopped; a new start forgets every account (and makes a new root)
    pebble["host"].check_output("systemctl start pebble")
    assert wait_for(lambda: pebble["host"].run(f"curl -sf --cacert /etc/pebble/ca.pem https://{pebble['name']}:14000/dir").rc == 0, 30)
    hosts[owner].check_output(f"rm -rf '/etc/letsencrypt/accounts/{pebble['name']}:14000'")
    root = pebble["host"].check_output(f"curl -sf --cacert /etc/pebble/ca.pem https://{pebble['name']}:15000/roots/0")
    since = pebble["host"].check_output("date +%s")
    root_file = tmp_path / "pebble-root.crt"
    root_file.write_text(root + "\n")
    _point_names_at(pebble, peer)
    settings = {"nginx_tls_source": "acme", "nginx_server_names": NAMES, "nginx_acme_owner": owner,
                "nginx_acme_directory": f"https://{pebble['name']}:14000/dir",
                # the peers check the owner's share listener, whose certificate is Pebble's
                "ca_certificates_extra_files": [pebble["ca"], str(root_file)]}
    limit = ("--limit", f"{owner},{peer}", "--tags", "ca_certificates,nginx")

    def run():
        proc = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", *limit, "-e", json.dumps(settings)],
                           check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return changed_tasks(proc.stdout)

    changed = run()
    orders = [task for task in changed if ORDER in task]
    assert len(orders) == 1 and orders[0].endswith(f" {owner}"), changed
    assert _issued(pebble, since) == 1  # one certificate for both hosts, as Pebble counts it
    assert any("Fetch the certificate from" in task and task.endswith(f" {peer}") for task in changed), changed
    served = {name: _served(host, root) for name, host in hosts.items()}
    assert served[owner][1] == served[peer][1] == sorted(NAMES) and served[owner][0] == served[peer][0], served
    # the validation reached the peer, which passed it to the owner
    challenges = hosts[peer].check_output("grep -c acme-challenge /var/log/nginx/app.json.log || true")
    assert int(challenges or 0) > 0, "Pebble's validation did not reach the peer"
    print(f"one order for {owner} and {peer}, by {owner}'s {hosts[owner].check_output('certbot --version 2>&1')}")
    # the owner's share port: its peer got the certificate through it; any other host is refused by the
    # port's own nftables table (a TCP reset: curl's 7), before nginx's allow-list would answer 403
    share = f"curl -sk --max-time 5 -o /dev/null https://{owner}:8444/"
    assert pebble["host"].run(share).rc == 7, "the share port answered a host that is not a peer"
    assert hosts[owner].run("nft list table inet flaskfleet_fw_nginx_acme_share").rc == 0

    # a rerun orders nothing and fetches nothing
    assert run() == []
    assert _issued(pebble, since) == 1

    # the owner renews (its certbot unit); the peer's fetch unit brings the new certificate, nginx reloaded
    master = hosts[peer].check_output("cat /run/nginx.pid")
    hosts[owner].check_output("systemctl start certbot.service")
    renewed = _served(hosts[owner], root)[0]
    assert renewed != served[owner][0]
    hosts[peer].check_output("systemctl start flaskfleet-nginx-acme-pull.service")
    assert _served(hosts[peer], root)[0] == renewed
    assert hosts[peer].check_output("cat /run/nginx.pid") == master

    # a rebuilt peer (nothing of ACME left on it) fetches, and orders nothing
    hosts[peer].check_output("rm -rf /var/lib/flaskfleet/nginx-acme /etc/flaskfleet/nginx-acme-share.token")
    changed = run()
    assert not [task for task in changed if ORDER in task], changed
    assert _issued(pebble, since) == 2  # the first order and the owner's renewal: none for the rebuilt peer
    assert _served(hosts[peer], root)[0] == renewed

    # both back to the self-signed source: nothing fetches or shares any more
    settings = {"ca_certificates_extra_files": [pebble["ca"]]}
    run()
    for name, host in hosts.items():
        assert host.run("test -e /etc/systemd/system/flaskfleet-nginx-acme-pull.timer"
                        " || test -e /var/lib/flaskfleet-acme-share/app").rc == 1, name
    assert hosts[owner].run("nft list table inet flaskfleet_fw_nginx_acme_share").rc != 0
    _point_names_at(pebble, peer)  # where the module's fixture pointed them
