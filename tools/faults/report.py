# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fault table of `make faults`: the rows each scenario's fault tests wrote
(.cache/faults/<scenario>-<size>.json, written by molecule/resources/tests/flaskfleet_testlib/faults.py),
printed as one markdown table and saved together as JSON.

usage: report.py OUT.json IN.json...
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

COLUMNS = (
    ("fault", "Fault"),
    ("backend", "Backend"),
    ("requests", "Requests"),
    ("failed_requests", "Failed"),
    ("recovery_s", "Answering again after (s)"),
    ("lost_tasks", "Tasks lost"),
    ("lost_log_lines", "Log lines lost"),
    ("other", "Also measured"),
)
SHOWN = {key for key, _title in COLUMNS}


def _cell(value):
    if value is None:
        return "–"
    if isinstance(value, float) and value == float("inf"):
        return "never"
    return str(value)


def main(out, inputs):
    runs = []
    for path in inputs:
        with open(path, encoding="utf-8") as handle:
            runs.append(json.load(handle))
    rows = [row for run in runs for row in run["rows"]]
    machine = {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count(), "memory": _memory()}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"made": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": machine, "runs": runs}, handle, indent=2)
    sizes = ", ".join(f"{run['scenario']}: {run['size']}" for run in runs)
    print(f"Fault suite ({sizes}) on {machine}")
    print()
    print("| " + " | ".join(title for _key, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        other = ", ".join(f"{key} {_cell(value)}" for key, value in sorted(row.items())
                          if key not in SHOWN and key != "scenario")
        cells = [_cell(row.get(key)) if key != "other" else other for key, _title in COLUMNS]
        print("| " + " | ".join(cells) + " |")
    print(f"\n(saved: {out})")
    return 0


def _memory():
    with open("/proc/meminfo", encoding="utf-8") as handle:
        total_kb = int(handle.readline().split()[1])
    return f"{total_kb / 2**20:.0f} GiB"


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
