# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""--check --diff on converged hosts reports no change (the scenario's `check` step covers never-converged ones)."""
from __future__ import annotations

import re

import pytest
from flaskfleet_testlib.ansible_cli import converge
from flaskfleet_testlib.stack import SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "systemd", reason="once, in scenario default")


def test_check_mode_on_a_converged_host_changes_nothing(instance):
    if not instance.endswith("debian12"):
        pytest.skip("one platform")
    proc = converge(instance, None, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", proc.stdout, re.M)
    assert recap == [(instance, "0")], proc.stdout[-3000:]
