# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's CPU seconds: this pytest's and what it ran, in all and per test (the suite's cost)."""
from __future__ import annotations

import resource

# Each test's CPU seconds, its fixtures' converges included (conftest's pytest_runtest_protocol fills it).
TEST_CPU = {}


def cpu_seconds():
    """User + system seconds of this pytest and every process it has waited for (ansible-playbook, engine execs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
