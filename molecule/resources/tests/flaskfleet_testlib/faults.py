# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fault table: what each fault test injected and measured (record_fault), written at the end of the session
to .cache/faults/<scenario>-<size>.json for `make faults`' table (tools/faults/report.py)."""
from __future__ import annotations

import json
import os
import time

from .inventory import scenario_name
from .stack import ROOT, SUPERVISOR

# The fault suite (tests marked `fault`): `make faults` sets FLASKFLEET_FAULTS=full
# and runs those alone at full size (a longer Loki outage, more tasks queued);
# in `make test` they run at short size among the others.
FAULTS_FULL = os.environ.get("FLASKFLEET_FAULTS") == "full"
FAULT_ROWS = []


def record_fault(fault, **measured):
    """One row of the fault table: what a fault test injected and what it measured."""
    row = {"fault": fault, "backend": SUPERVISOR, "scenario": scenario_name(), **measured}
    FAULT_ROWS.append(row)
    print("fault " + json.dumps(row, sort_keys=True))


def write_fault_table():
    """The rows of this run in .cache/faults/<scenario>-<size>.json (nothing when no fault test recorded one)."""
    if not FAULT_ROWS:
        return
    out = ROOT / ".cache" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    size = "full" if FAULTS_FULL else "short"
    (out / f"{scenario_name()}-{size}.json").write_text(
        json.dumps({"scenario": scenario_name(), "backend": SUPERVISOR, "size": size,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": FAULT_ROWS}, indent=2) + "\n")
