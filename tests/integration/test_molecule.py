# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every Molecule scenario, as one test each, so `make test` ends with one pytest summary.

Runs inside tools/harness/engine.sh (DOCKER_HOST set). The scenarios start as
soon as pytest has collected the tests (conftest.py) and run side
by side (FLASKFLEET_SCENARIO_JOBS at once, default 2: each spends most of its
time waiting on package installs and services); each one's full output goes to
.cache/logs/molecule-<scenario>.log, and its verifier's part is printed when
its test ends, with the time it took.
"""
from __future__ import annotations

import os
import pathlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import run_logged

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
JOBS = int(os.environ.get("FLASKFLEET_SCENARIO_JOBS", "2"))


def _run(scenario):
    log = ROOT / ".cache" / "logs" / f"molecule-{scenario}.log"
    return (*run_logged([str(ROOT / "tools" / "harness" / "molecule.sh"), "test", "-s", scenario], log), log)


_RUNS = {}


def start_background():
    """Start every scenario (conftest.py calls this once the tests are collected)."""
    if not _RUNS and os.environ.get("DOCKER_HOST"):
        pool = ThreadPoolExecutor(max_workers=max(1, JOBS), thread_name_prefix="molecule")
        _RUNS.update({scenario: pool.submit(_run, scenario) for scenario in SCENARIOS})
        pool.shutdown(wait=False)


@pytest.fixture(scope="module")
def runs():
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("run through tools/harness/engine.sh (make test): DOCKER_HOST is not set")
    start_background()
    return _RUNS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(runs, scenario):
    rc, took, cpu, log = runs[scenario].result()
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next((i for i, line in enumerate(lines) if "verify" in line and "Running" in line), max(0, len(lines) - 300))
    print(f"\n===== molecule scenario {scenario}: rc={rc}, {took / 60:.1f} min, {cpu:.0f} CPU s (log: {log}) =====")
    print("\n".join(lines[start:] if rc == 0 else lines[-400:]))
    # What failed, in the assertion's message: CI shows the summary at the end of a long output.
    failed = [line.strip()[:300] for line in lines
              if line.startswith(("FAILED ", "ERROR ")) or line.lstrip().startswith(("fatal: [", "E   "))]
    assert rc == 0, (f"molecule test -s {scenario} failed (rc={rc}); full log: {log}\n"
                     + "\n".join(failed[-25:]))
