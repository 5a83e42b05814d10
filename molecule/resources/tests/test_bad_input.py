# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A bad nginx snippet, which only `nginx -t` can refuse, never replaces the running configuration.

Input the preflight refuses is tested without a container
(tests/integration/test_bad_input.py). This case writes the files, tests
them and puts them back: the host's files and services are compared before
and after.
"""
from __future__ import annotations

import pytest
from flaskfleet_testlib.ansible_cli import converge
from flaskfleet_testlib.service import curl_in
from flaskfleet_testlib.stack import SERVICE, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")

STATE = (
    "set -o pipefail; find /etc/flaskfleet /etc/nginx /etc/systemd/system /etc/tmpfiles.d /srv/app /var/www /var/lib/flaskfleet"
    " -path /srv/app/releases -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; readlink /srv/app/current;"
    f" systemctl show -P MainPID,ExecMainStartTimestamp {SERVICE} nginx"
)


def test_bad_nginx_snippet_is_refused_and_the_host_is_unchanged(instance, host):
    if not instance.endswith("debian12"):
        pytest.skip("one platform")
    before = host.check_output(f"bash -c '{STATE}'")
    proc = converge(instance, {"nginx_extra_config": "this is not nginx syntax;"}, "--tags", "nginx")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "nginx_extra_config" in output, output[-3000:]
    assert host.check_output(f"bash -c '{STATE}'") == before
    assert host.run("nginx -t").rc == 0
    assert curl_in(host, "/healthz", "-o /dev/null", "-w '%{http_code}'").stdout == "200"
