# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every Molecule scenario, as one test each, so `make test` ends with one pytest summary.

Runs inside tools/harness/engine.sh (DOCKER_HOST set). Each scenario's full
output streams to the terminal and to .cache/logs/molecule-<scenario>.log.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("run through tools/harness/engine.sh (make test): DOCKER_HOST is not set")
    logs = ROOT / ".cache" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"molecule-{scenario}.log"
    with subprocess.Popen(
        [str(ROOT / "tools" / "harness" / "molecule.sh"), "test", "-s", scenario],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as proc, open(log, "w", encoding="utf-8") as out:
        for line in proc.stdout:
            sys.stdout.write(line)
            out.write(line)
        rc = proc.wait()
    assert rc == 0, f"molecule test -s {scenario} failed (rc={rc}); full log: {log}"
