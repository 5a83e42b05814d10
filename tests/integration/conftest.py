# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller as an inventory: playbooks whose checks or plans need no container."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_collection_finish(session):
    # The long jobs (every Molecule scenario, lint and sanity) start as soon as
    # the tests are known: a test module's start_background() submits them to
    # its own threads, its tests wait for their results. The quick tests run
    # meanwhile, and the scenarios do not wait for lint.
    started = set()
    for item in session.items:
        module = getattr(item, "module", None)
        start = getattr(module, "start_background", None)
        if start and module not in started:
            started.add(module)
            start()


def run_logged(cmd, log):
    """Run a long job with its output in a log; returns (rc, wall seconds, CPU seconds).

    The CPU seconds (user + system of the job and every process it waited for)
    come from wait4 on the job itself, so jobs running side by side are told apart.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        with subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT) as proc:
            waited = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(waited[1])
    usage = waited[2]
    return proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    with open(ROOT / ".config" / "molecule" / "config.yml", encoding="utf-8") as handle:
        text = handle.read().replace("${MOLECULE_PROJECT_DIRECTORY}", str(ROOT)).replace("$$", "$")
    # Loki's and Promtail's zips, checked on the controller by the preflight
    artifacts = os.environ.get("FLASKFLEET_ARTIFACTS") or str(ROOT.parent / "shared" / "artifacts")
    text = text.replace("${FLASKFLEET_ARTIFACTS}", artifacts)
    group_vars = yaml.safe_load(text)["provisioner"]["inventory"]["group_vars"]
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}
    path = tmp_path_factory.mktemp("controller") / "inventory.yml"
    # The controller as a whole single-host fleet: web, worker, Redis and Loki.
    path.write_text(yaml.safe_dump({
        "all": {"vars": {**group_vars["all"], **group_vars["flask_web"]}},
        "flask_web": {"hosts": {"controller": host}},
        "flask_workers": {"hosts": {"controller": None}},
        "redis": {"hosts": {"controller": None}},
        "loki": {"hosts": {"controller": None}},
    }))
    return path
