# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The issue's targets: each one's measured value from the record, its goal, whether it is met (reported, never
fatal); the converge rows against the plain-task baseline."""
from __future__ import annotations

from common import IO_WAIT_MS
from stats import ratio

# The converge targets of the issue (reported beside the measured values, never fatal).
RERUN_RATIO_GOAL = 1.5
FRESH_RATIO_GOAL = 1.5
WEB_RERUN_EXECS_GOAL = 25
STACK_RERUN_EXECS_GOAL = 55
NO_GOAL = 'none set'


def measured(record: dict, key: str) -> dict:
    """One load's aggregate, or an empty dict when it was not measured."""
    return record['loads'].get(key) or {}


def _target(name: str, value, goal: str, met: bool) -> dict:
    return {'target': name, 'value': value, 'goal': goal, 'met': met if value is not None else None}


def _io_targets(record: dict) -> list:
    plan = measured(record, 'io_plan_nginx')
    share = ratio(plan.get('rps'), record['settings']['connections'] * 1000.0 / IO_WAIT_MS, 3)
    defaults = ratio(plan.get('rps'), measured(record, 'io_defaults_nginx').get('rps'), 1)
    sync = ratio(plan.get('rps'), measured(record, 'io_sync2n1_nginx').get('rps'), 1)
    p99 = plan.get('p99_ms')
    return [
        _target('I/O plan: share of the concurrency limit (connections / wait)', share, '>= 0.90', share is not None and share >= 0.90),
        _target("I/O plan vs Gunicorn's defaults (1 sync worker)", defaults, '>= 50x', defaults is not None and defaults >= 50),
        _target('I/O plan vs 2 x vCPUs + 1 sync workers', sync, '>= 10x', sync is not None and sync >= 10),
        _target('I/O plan: p99 latency (ms)', p99, f'<= {3 * IO_WAIT_MS} (3x the wait)', p99 is not None and p99 <= 3 * IO_WAIT_MS),
    ]


def _cpu_targets(record: dict) -> list:
    direct = {key: value for key, value in record['loads'].items() if key.startswith('cpu_direct_')}
    best = direct[max(direct, key=lambda key: direct[key]['rps'])] if direct else {}
    plan = measured(record, 'cpu_plan_nginx')
    against_best = ratio(plan.get('rps'), best.get('rps'), 3)
    sync = measured(record, 'cpu_direct_sync2n1').get('p99_ms')
    p99 = plan.get('p99_ms')
    return [
        _target(f'CPU plan through nginx vs the best direct configuration ({best.get("configuration", "-")})',
                against_best, '>= 0.95x', against_best is not None and against_best >= 0.95),
        _target('CPU plan through nginx: p99 (ms) vs 2 x vCPUs + 1 sync direct', p99,
                f'<= {sync}' if sync is not None else '<= 2n+1 sync direct', p99 is not None and sync is not None and p99 <= sync),
    ]


def targets(record: dict) -> list:
    """Each target of the issue: value, goal, met (None: not measured)."""
    phases = set(str(record['settings'].get('phases', 'converge,io,celery,defaults,cpu')).split(','))
    # The loads' targets when loads were asked for (FLASKFLEET_BENCH_PHASES=converge runs none).
    found = _io_targets(record) + _cpu_targets(record) if phases & {'io', 'defaults', 'cpu'} else []
    converge = record.get('converge', {})
    changed = converge.get('rerun_changed')
    found.append(_target('Web host rerun: changed tasks', changed, '0', changed == 0))
    found += [_target(row['target'], row['value'], row['goal'], row['met']) for row in converge_ratios(record)
              if row['goal'] != NO_GOAL]
    memory = record.get('memory', {})
    if memory:
        oom = sum(entry['oom_kills'] for entry in memory.values())
        found.append(_target('OOM kills in the Gunicorn unit during the loads', oom, '0', oom == 0))
        shares = [entry['peak_share_of_high'] for entry in memory.values() if entry.get('peak_share_of_high') is not None]
        worst = max(shares) if shares else None
        found.append(_target('Gunicorn unit memory peak / MemoryHigh (worst configuration)', worst, '< 1',
                             worst is not None and worst < 1))
    return found


def _execs(entry) -> int | None:
    """The remote execs of a count (None when not counted)."""
    return (entry or {}).get('remote_execs')


def converge_ratios(record: dict) -> list:
    """The converge rows the issue asks for: each rerun and fresh time against the plain-task baseline's, and the
    remote execs of the reruns, with the issue's goals (met: None when not measured or no goal)."""
    converge = record.get('converge', {})
    stack = converge.get('whole_stack', {})
    ssh = converge.get('ssh', {})
    connection = converge.get('connection', 'container')
    rows = []

    def add(name, value, goal, limit, suffix=''):
        met = None if value is None or limit is None else value <= limit
        rows.append({'target': name, 'value': value, 'goal': goal, 'met': met, 'suffix': suffix})

    add(f'Web host rerun / plain-task baseline rerun ({connection})', converge.get('rerun_ratio'),
        f'<= {RERUN_RATIO_GOAL}x', RERUN_RATIO_GOAL, 'x')
    add('Web host rerun / plain-task baseline rerun (ansible.builtin.ssh)', ssh.get('rerun_ratio'),
        f'<= {RERUN_RATIO_GOAL}x', RERUN_RATIO_GOAL, 'x')
    add(f'Web host fresh / plain-task baseline fresh ({connection})', converge.get('fresh_ratio'),
        f'<= {FRESH_RATIO_GOAL}x', FRESH_RATIO_GOAL, 'x')
    add(f'Whole-stack host rerun / the same plain-task baseline\'s rerun ({connection})', stack.get('rerun_ratio'),
        NO_GOAL, None, 'x')
    add(f'Web host rerun: remote execs ({connection})', _execs(converge.get('rerun_execs')),
        f'<= {WEB_RERUN_EXECS_GOAL}', WEB_RERUN_EXECS_GOAL)
    add('Web host rerun: remote execs (ansible.builtin.ssh)', _execs(ssh.get('rerun_execs')),
        f'<= {WEB_RERUN_EXECS_GOAL}', WEB_RERUN_EXECS_GOAL)
    add(f'Whole-stack host rerun: remote execs ({connection})', _execs(stack.get('rerun_execs')),
        f'<= {STACK_RERUN_EXECS_GOAL}', STACK_RERUN_EXECS_GOAL)
    return rows
