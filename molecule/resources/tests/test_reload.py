# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A new app version is rolled out by a graceful Gunicorn reload, not a restart."""
from __future__ import annotations

import json
import shutil
import time

import pytest
from conftest import ROOT, SERVICE, SUPERVISOR, ansible_run, curl_in, main_pid


def _state(host):
    master = main_pid(host)
    workers = set(host.check_output(f"pgrep -P {master}").split())
    restarts = host.check_output(f"systemctl show -P NRestarts {SERVICE}") if SUPERVISOR == "systemd" else ""
    return master, workers, restarts


def _deploy(instance, source):
    proc = ansible_run(["ansible-playbook", "molecule/resources/converge.yml", "--limit", instance,
                        "-e", json.dumps({"flask_app_source_dir": str(source)})], check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _wait_for_new_workers(host, old_workers, count):
    for _attempt in range(60):
        workers = _state(host)[1]
        if len(workers) == count and not workers & old_workers:
            return workers
        time.sleep(0.5)
    raise AssertionError(f"workers not replaced: old {old_workers}, now {workers}")


def test_new_version_reloads_gracefully(instance, host, tmp_path):
    if not instance.endswith("debian12"):
        pytest.skip("the rollout check runs on one platform")
    source = tmp_path / "app"
    shutil.copytree(ROOT / "demo" / "app", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    init = source / "src" / "flaskfleet_demo" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "1.0.0"', '__version__ = "1.0.1+rollout"'))

    master, workers, restarts = _state(host)
    try:
        _deploy(instance, source)
        new_workers = _wait_for_new_workers(host, workers, len(workers))
        new_master, _workers, new_restarts = _state(host)
        assert (new_master, new_restarts) == (master, restarts), "the master was restarted, not reloaded"
        index = json.loads(curl_in(host, "/").stdout)
        assert index["version"] == "1.0.1+rollout"
    finally:
        _deploy(instance, ROOT / "demo" / "app")
    _wait_for_new_workers(host, new_workers, len(workers))
    assert json.loads(curl_in(host, "/").stdout)["version"] == "1.0.0"
