#!/usr/bin/env bash
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# make faults: the fault suite at full size under both supervision backends.
# Each scenario (default: systemd, three hosts; supervisord: one host) is
# created and converged fresh, its tests marked `fault` run alone with
# FLASKFLEET_FAULTS=full (a minute of Loki down, more tasks queued), and it is
# destroyed. Both run side by side; tools/faults/report.py prints the table
# and saves it as .cache/faults/faults.json. Run through tools/harness/engine.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${DOCKER_HOST:?run through tools/harness/engine.sh (make faults)}"
scenarios=${FLASKFLEET_FAULT_SCENARIOS:-default supervisord}
export FLASKFLEET_FAULTS=full
mkdir -p .cache/logs .cache/faults

run() {  # one scenario: fresh converge, the fault tests, destroy
    local scenario=$1 log=.cache/logs/faults-$1.log rc=0
    rm -f ".cache/faults/$scenario-full.json"
    {
        tools/harness/molecule.sh destroy -s "$scenario" &&
        tools/harness/molecule.sh create -s "$scenario" &&
        tools/harness/molecule.sh prepare -s "$scenario" &&
        tools/harness/molecule.sh converge -s "$scenario" &&
        tools/harness/molecule.sh verify -s "$scenario"
    } > "$log" 2>&1 || rc=$?
    tools/harness/molecule.sh destroy -s "$scenario" >> "$log" 2>&1 || true
    echo "faults: scenario $scenario rc=$rc (log: $log)"
    return "$rc"
}

pids=()
for scenario in $scenarios; do
    run "$scenario" & pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
reports=()
for scenario in $scenarios; do
    [ -e ".cache/faults/$scenario-full.json" ] && reports+=(".cache/faults/$scenario-full.json")
done
[ ${#reports[@]} -gt 0 ] && .venv/bin/python tools/faults/report.py .cache/faults/faults.json "${reports[@]}"
exit "$rc"
