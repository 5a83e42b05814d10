# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input fails with a message naming the variable, and the host stays as it was.

Each case reruns the fleet playbook with one bad variable against a converged
host. The host's configuration files and its services' main processes are
compared before and after all cases.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT, SERVICE, SUPERVISOR, ansible_run, curl_in

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd", reason="controller-side checks: run once, in scenario default")

CASES = {
    "wrong type": ({"gunicorn_worker_memory_mb": "lots"}, "gunicorn_worker_memory_mb"),
    "unknown worker class": ({"gunicorn_worker_class": "eventlet"}, "gunicorn_worker_class"),
    "zero workers": ({"gunicorn_workers": 0}, "gunicorn_workers"),
    "negative min workers": ({"gunicorn_min_workers": -2}, "gunicorn_min_workers"),
    "port out of range": ({"nginx_https_port": 70000}, "nginx_https_port"),
    "malformed CIDR": ({"nginx_trusted_proxies": ["10.0.0.0/33"]}, "nginx_trusted_proxies"),
    "certificate without key": ({"nginx_tls_certificate_src": str(ROOT / "LICENSE")}, "nginx_tls_key"),
    "wsgi not module:callable": ({"flask_app_wsgi": "flaskfleet_demo"}, "flask_app_wsgi"),
    "caps below the plan": ({"gunicorn_memory_max_mb": 64}, "gunicorn_memory_max_mb"),
    "flask debug on": ({"flask_app_env": {"FLASK_DEBUG": "1"}}, "FLASK_DEBUG"),
    "secrets with a newline": ({"flask_app_secrets": {"TOKEN": "a\nb"}}, "flask_app_secrets"),
    "unknown supervisor": ({"flask_app_supervisor": "runit"}, "flask_app_supervisor"),
    "bad nginx snippet": ({"nginx_extra_config": "this is not nginx syntax;"}, "nginx_extra_config"),
}

STATE = (
    "set -o pipefail; find /etc/flaskfleet /etc/nginx /etc/systemd/system /etc/tmpfiles.d /srv/app /var/www"
    " -type f -print0 | sort -z | xargs -0 sha256sum;"
    f" systemctl show -P MainPID,ExecMainStartTimestamp {SERVICE} nginx"
)


@pytest.fixture(scope="module")
def outcomes(instance, host):
    if not instance.endswith("debian12"):
        pytest.skip("bad-input cases run against one platform (the checks are controller-side)")
    before = host.check_output(f"bash -c '{STATE}'")

    def run(case):
        extra = CASES[case][0]
        return case, ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", instance,
                                  "-e", json.dumps(extra)], check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(run, CASES))
    after = host.check_output(f"bash -c '{STATE}'")
    return results, before, after


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_naming_the_variable(outcomes, case):
    results = outcomes[0]
    proc = results[case]
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert CASES[case][1] in output, output[-3000:]
    if case != "bad nginx snippet":  # written to be tested, then put back: see test_host_is_unchanged_and_serving
        assert "changed=0" in output, "a bad input changed something on the host"


def test_host_is_unchanged_and_serving(outcomes, host):
    before, after = outcomes[1:]
    assert after == before
    assert host.run("nginx -t").rc == 0
    assert curl_in(host, "/healthz", "-o /dev/null", "-w '%{http_code}'").stdout == "200"
