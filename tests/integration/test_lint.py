# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lint and sanity (`make lint-checks`: yamllint, ansible-lint, changelog lint,
ansible-test sanity on both ansible-core lines) as one test of `make test`,
started in the background as soon as the tests are collected (conftest.py) so
it runs beside the Molecule scenarios instead of before them. Its output goes
to .cache/logs/lint.log; a failure's assertion carries the lines that failed.
"""
from __future__ import annotations

import os
import pathlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import run_logged

ROOT = pathlib.Path(__file__).resolve().parents[2]
_LINT = {}


def _run():
    log = ROOT / ".cache" / "logs" / "lint.log"
    return (*run_logged(["make", "--no-print-directory", "lint-checks"], log), log)


def start_background():
    """Start `make lint-checks` (conftest.py calls this once the tests are collected)."""
    if not _LINT and os.environ.get("MAKELEVEL"):
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lint")
        _LINT["run"] = pool.submit(_run)
        pool.shutdown(wait=False)


def test_lint_and_sanity():
    if not os.environ.get("MAKELEVEL"):
        pytest.skip("run by make test (it needs the tree `make tree` builds); alone: make lint")
    start_background()
    rc, took, cpu, log = _LINT["run"].result()
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    print(f"\n===== make lint-checks: rc={rc}, {took / 60:.1f} min, {cpu:.0f} CPU s (log: {log}) =====")
    print("\n".join(lines[-60:]))
    failed = [line.strip()[:300] for line in lines
              if any(word in line for word in ("ERROR", "Error", "error:", "FAILED", "failed", "WARNING: "))]
    assert rc == 0, f"make lint-checks failed (rc={rc}); full log: {log}\n" + "\n".join(failed[-40:])
