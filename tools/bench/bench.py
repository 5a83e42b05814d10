# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: converge the stack into a container, load it from another one, print the ratios.

Run by tools/harness/bench.sh (inside tools/harness/engine.sh), which makes
the containers: the host under test (web, Celery worker, Redis, Loki and
Promtail, from tools/bench/inventory.yml; sshd for the SSH rows) and, when
loads are asked for, a client with wrk on the same network.

    python tools/bench/bench.py --cli podman --host flaskfleet-bench \\
        --client flaskfleet-bench-client --ip 10.89.2.2 --ssh-host 10.89.2.2

The converge rows (fresh, reruns, whole stack, SSH, remote execs counted at
the connection) are described in docs/bench.md.

Each Gunicorn and Celery configuration is set through the roles' own
variables (ansible-playbook ... -e); the numbers straight to Gunicorn come
from a second Gunicorn started by hand (systemd-run) from the release venv
with the live configuration file and a TCP bind. The table goes to stdout;
the whole record to .cache/bench/bench-<timestamp>.json and latest.json.
A missed target is reported, not fatal: the exit status is 1 only when the
bench itself broke.

This file is the command line; each part of the bench is a module beside it:
phases (the run, in order, and its record), converge and playbooks (the
converge rows), playbook_stats (what a run did, its remote execs),
load_phases (which configurations each load phase measures), loads and wrk
(the wrk loads), gunicorn_configs (the configurations under load, the direct
Gunicorn), calibration (the /cpu size), celery_tasks (Celery round trips),
unit_memory (the unit's cgroup memory), cpu_accounting and quiet (where the
CPU went, a quiet machine), machine (what it ran on), commands (the
controller and the host container), targets and report (the targets, the
table), common and stats (shared names and arithmetic). Requests to nginx go
through the tests' HTTPS client (https_client: molecule/resources/tests/
flaskfleet_testlib/https.py).
"""
from __future__ import annotations

import argparse
import os
import sys

from common import OUT
from phases import Bench


def main(argv=None) -> int:
    """Command line: the containers come from tools/harness/bench.sh."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--cli', default=os.environ.get('FLASKFLEET_ENGINE_CLI', 'podman'))
    parser.add_argument('--host', default='flaskfleet-bench')
    parser.add_argument('--client', default='flaskfleet-bench-client')
    parser.add_argument('--ip', required=True, help='the host container address on the bench network')
    parser.add_argument('--network', default='flaskfleet-bench', help='the bench network (the later fresh rounds\' hosts join it)')
    parser.add_argument('--fresh', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_FRESH', '3')),
                        help='rounds of fresh runs (baseline, then web host), the medians compared')
    parser.add_argument('--duration', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_DURATION', '10')))
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--connections', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--reruns', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_RERUNS', '3')),
                        help='timed reruns of each playbook, each followed by a baseline rerun; the medians are compared')
    parser.add_argument('--repeats', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_REPEATS', '2')),
                        help='measured runs of each load, interleaved with the others of its group; the median is kept')
    parser.add_argument('--quiet-busy', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_BUSY', '40')),
                        help='before each round of loads, wait until the CPUs are at most this busy (percent) ...')
    parser.add_argument('--quiet-wait', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_WAIT', '90')),
                        help='... for at most this many seconds each time (then measure anyway, and say so) ...')
    parser.add_argument('--quiet-budget', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_BUDGET', '180')),
                        help='... and this many in all')
    parser.add_argument('--phases', default=os.environ.get('FLASKFLEET_BENCH_PHASES', 'converge,io,celery,defaults,cpu'),
                        help='comma-separated: converge alone (no client needed), or the loads too (development: skip '
                        'converge on a host already converged)')
    parser.add_argument('--ssh-host', default='', help="the host's sshd address for the SSH rows (none: not measured)")
    parser.add_argument('--ssh-key', default=str(OUT / 'ssh' / 'id_ed25519'))
    parser.add_argument('--ssh-known-hosts', default=str(OUT / 'ssh' / 'known_hosts'))
    args = parser.parse_args(argv)
    if args.reruns < 1:
        parser.error('--reruns must be at least 1')
    return Bench(args).main([phase.strip() for phase in args.phases.split(',') if phase.strip()])


if __name__ == '__main__':
    sys.exit(main())
