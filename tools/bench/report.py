# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The record as markdown: the machine, one table per part (loads, CPU use, Celery, converge, memory), the targets."""
from __future__ import annotations

import statistics

from common import CELERY_BATCH, CELERY_TASK_MS, IO_WAIT_MS, WEB_TAGS
from stats import ratio
from targets import converge_ratios, measured


def _num(value, digits=0, suffix=''):
    """A number for the table (- when missing)."""
    if value is None:
        return '-'
    if digits == 0:
        return f'{value:,.0f}{suffix}'
    return f'{value:,.{digits}f}{suffix}'


def _latency(value):
    """Milliseconds for the table, as seconds from 1000 ms."""
    if value is None:
        return '-'
    if value >= 1000:
        return f'{value / 1000:.2f} s'
    return f'{value:.1f} ms' if value < 100 else f'{value:.0f} ms'


def _row(cells):
    """One markdown table row."""
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def _errors(load):
    """A load's errors in words (0 when none)."""
    if not load:
        return '-'
    parts = []
    if load['non_2xx_3xx']:
        parts.append(f'{load["non_2xx_3xx"]} non-2xx')
    for kind, count in load['socket_errors'].items():
        if count:
            parts.append(f'{count} {kind}')
    return ', '.join(parts) if parts else '0'


def _render_machine(record: dict) -> list:
    machine = record.get('machine', {})
    settings = record['settings']
    lines = [f'### flaskfleet.stack bench, {record["started"][:16].replace("T", " ")} UTC', '',
             f'Machine: {machine.get("nproc", "?")} vCPUs ({machine.get("cpu_model", "?")}), '
             f'{machine.get("memory_mb", 0) / 1024:.1f} GiB, Linux {machine.get("kernel", "?")}, cgroup {machine.get("cgroup", "?")}; '
             f'load average {" / ".join(str(x) for x in machine.get("load_before", []))} before, '
             f'{" / ".join(str(x) for x in machine.get("load_after", []))} after. '
             + (f'{machine.get("engine", "")}, {machine.get("ansible", "")}, {machine.get("wrk", "wrk")}: '
                f'{settings["connections"]} connections, {settings["threads"]} threads, from a second container; each number is '
                f'the median of {settings["repeats"]} runs of {settings["duration_s"]} s (each after a {settings["warmup_s"]} s '
                'warm-up), interleaved with the other loads of its group.' if 'wrk' in machine else
                f'{machine.get("engine", "")}, {machine.get("ansible", "")}; phases: {settings.get("phases", "?")} '
                '(no loads).')]
    quiet = record.get('quiet', [])
    if quiet:
        calm = sum(1 for entry in quiet if entry['quiet'])
        lines += ['', f'Other work on the machine: before {calm} of {len(quiet)} rounds of measurement the CPUs were at most '
                  f'{settings["quiet_busy_pct"]:g} % busy (waited {sum(entry["waited_s"] for entry in quiet):.0f} s in all, '
                  f'budget {settings["quiet_budget_s"]:g} s); median CPU use before a round '
                  f'{statistics.median(entry["cpu_busy_pct"] for entry in quiet):.0f} %.']
    if record.get('error'):
        lines += ['', f'**The bench broke: {record["error"]}** (what follows is what was measured before)']
    return lines


def _render_io(record: dict) -> list:
    if not record.get('loads'):
        return []
    settings = record['settings']
    limit = settings['connections'] * 1000.0 / IO_WAIT_MS
    plan = measured(record, 'io_plan_nginx')
    lines = ['', f'I/O-bound endpoint, `GET /io?ms={IO_WAIT_MS}`, through nginx over HTTPS '
             f'(concurrency limit {settings["connections"]} / {IO_WAIT_MS / 1000:g} s = {limit:.0f} req/s):', '',
             _row(['configuration', 'Gunicorn', 'req/s', 'p50', 'p99', 'errors', 'share of limit', 'plan is']),
             _row(['---', '---', '---:', '---:', '---:', '---:', '---:', '---:'])]
    for key in ('io_plan_nginx', 'io_defaults_nginx', 'io_sync2n1_nginx'):
        load = record['loads'].get(key)
        if load:
            times = '' if key == 'io_plan_nginx' else _num(ratio(plan.get('rps'), load['rps'], 1), 1, 'x')
            lines.append(_row([load['label'], load['configuration'], _num(load['rps']), _latency(load['p50_ms']),
                               _latency(load['p99_ms']), _errors(load), _num(100.0 * load['rps'] / limit, 1, ' %'), times]))
    return lines


def _render_cpu(record: dict) -> list:
    if not record.get('loads'):
        return []
    cpu = record.get('cpu_calibration', {})
    lines = ['', f'CPU-bound endpoint, `GET /cpu?n={cpu.get("n", "?")}` (about {_num(cpu.get("p20_ms"), 1)} ms of CPU '
             'each, measured one at a time):', '',
             _row(['configuration', 'Gunicorn', 'via', 'req/s', 'p50', 'p99', 'errors']),
             _row(['---', '---', '---', '---:', '---:', '---:', '---:'])]
    for key in ('cpu_plan_nginx', 'cpu_io_plan_nginx', 'cpu_direct_sync1', 'cpu_direct_syncn', 'cpu_direct_sync2n1',
                'cpu_direct_gthread', 'cpu_direct_gevent'):
        load = record['loads'].get(key)
        if load:
            lines.append(_row([load['label'], load['configuration'], load['via'], _num(load['rps']), _latency(load['p50_ms']),
                               _latency(load['p99_ms']), _errors(load)]))
    lines += ['', "nginx's cost (the same Gunicorn configuration, HTTPS through nginx vs plain HTTP straight to Gunicorn):", '',
              _row(['endpoint', 'Gunicorn', 'through nginx', 'direct', 'nginx / direct', 'p99 nginx', 'p99 direct']),
              _row(['---', '---', '---:', '---:', '---:', '---:', '---:'])]
    for endpoint, via_nginx, direct in (('/io (I/O plan)', 'io_plan_nginx', 'io_plan_direct'),
                                        ('/cpu (CPU plan)', 'cpu_plan_nginx', 'cpu_direct_sync2n1')):
        first, second = record['loads'].get(via_nginx), record['loads'].get(direct)
        if first and second:
            lines.append(_row([endpoint, first['configuration'], _num(first['rps']), _num(second['rps']),
                               _num(ratio(first['rps'], second['rps'], 2), 2, 'x'), _latency(first['p99_ms']),
                               _latency(second['p99_ms'])]))
    return lines


def _render_cpu_use(record: dict) -> list:
    nproc = record.get('machine', {}).get('host_nproc') or record.get('machine', {}).get('nproc') or 1
    rows = []
    for key in ('io_plan_nginx', 'io_plan_direct', 'cpu_plan_nginx', 'cpu_direct_sync2n1', 'cpu_io_plan_nginx'):
        load = record['loads'].get(key)
        if not load or load.get('host_cpu_ms_per_request') is None:
            continue
        per_request = load['host_cpu_ms_per_request'] + load['client_cpu_ms_per_request']
        rows.append(_row([f'{load["label"]}, {load["via"]}', _num(load['rps']), _num(load['host_cpu_ms_per_request'], 2, ' ms'),
                          _num(load['client_cpu_ms_per_request'], 2, ' ms'), _num(nproc * 1000.0 / per_request if per_request else None),
                          _num(load['machine_busy_pct'], 0, ' %'), _num(load['bench_share_of_machine_pct'], 0, ' %')]))
    if not rows:
        return []
    return ['', f'Where the CPU went (CPU time of the host container and of wrk\'s container per request; what {nproc} idle '
            'vCPUs could carry at that cost; how busy the machine was and how much of its CPU time the bench got):', '',
            _row(['load', 'req/s', 'host CPU / req', 'wrk CPU / req', f'ceiling on {nproc} idle vCPUs', 'machine busy',
                  'bench\'s share']),
            _row(['---', '---:', '---:', '---:', '---:', '---:', '---:'])] + rows


def _render_celery(record: dict) -> list:
    celery = record.get('celery', {})
    if not celery:
        return []
    lines = ['', f'Celery through Redis: {CELERY_BATCH} tasks of {CELERY_TASK_MS} ms enqueued in one request, timed until '
             'the last one is stored; round trip of a 0 ms task (enqueued over HTTPS, polled until SUCCESS):', '',
             _row(['worker', 'concurrency', 'tasks/s', 'of ideal', 'round trip p50', 'p90']),
             _row(['---', '---:', '---:', '---:', '---:', '---:'])]
    for label in ('plan', 'concurrency-1'):
        entry = celery.get(label)
        if entry:
            lines.append(_row(['plan (celery_concurrency: null)' if label == 'plan' else 'celery_concurrency: 1',
                               entry['concurrency'], _num(entry['tasks_per_s'], 1),
                               _num(100.0 * entry['tasks_per_s'] / entry['ideal_tasks_per_s'], 0, ' %'),
                               _latency(entry['latency_ms']['p50']), _latency(entry['latency_ms']['p90'])]))
    if celery.get('plan') and celery.get('concurrency-1'):
        times = ratio(celery['plan']['tasks_per_s'], celery['concurrency-1']['tasks_per_s'], 1)
        lines += ['', f'Planned concurrency vs 1: {times}x the tasks per second.']
    return lines


def _seconds(value) -> str:
    return '-' if value is None else f'{value:.0f} s'


def _converge_row(name: str, playbook: str, seconds, runs: list, execs: dict | None) -> str:
    """One row of the converge table: the median seconds, the remote execs, what the (last) run did."""
    last = runs[-1] if runs else {}
    changed = max(run['changed'] for run in runs) if runs else '-'
    exec_cell = '-' if not execs else str(execs['remote_execs'])
    if execs and execs.get('transfer_sessions'):
        exec_cell += f' (incl. {execs["transfer_sessions"]} sftp/scp)'
    elif execs and execs.get('puts'):
        exec_cell += f' (+ {execs["puts"]} PUT, not execs)'
    return _row([name, playbook, _seconds(seconds), exec_cell, changed,
                 f'{last["ok"]} / {last["skipped"]}' if last else '-', last.get('module_runs', '-')])


def _render_converge(record: dict) -> list:
    converge = record.get('converge', {})
    if not converge.get('fresh'):
        return []
    web = f'site.yml --tags {WEB_TAGS}'
    base = 'tools/bench/baseline.yml'
    reruns = len(converge.get('reruns', []))
    fresh_rounds = converge.get('fresh_rounds') or [{'web': converge['fresh'], 'baseline': converge['baseline_fresh']}]
    lines = ['', f'Converge of the bench host ({converge.get("connection")} unless said; the same host for every row but the later fresh rounds). '
             f'The reruns go in {reruns} round{"" if reruns == 1 else "s"} (web host, plain-task baseline {base}, whole-stack host; over SSH: web host, '
             'baseline), and the medians are compared. Remote execs (docs/bench.md): processes the connection started on '
             'the host, from its -vvv lines: for a rerun, one more untimed run with -vvv; for a fresh run, the timed run '
             'itself (its -vvv lines to a log file). Changed: the most of any timed run of the row. The fresh runs: the '
             'baseline first, then, with what it left taken away (its files and the '
             f'{len(converge.get("baseline_undone", []))} packages it installed, purged; apt\'s .debs and pip\'s '
             f'cache), the web host; {len(fresh_rounds)} round{"" if len(fresh_rounds) == 1 else "s"} of them, the first on '
             'the bench\'s host, each later one on a new host of its own, and the medians compared (remote execs: the '
             'first round\'s, counted from its log).', '',
             _row(['run', 'playbook', 'seconds', 'remote execs', 'changed', 'tasks (ok / skipped)', 'module runs']),
             _row(['---', '---', '---:', '---:', '---:', '---:', '---:']),
             _converge_row('web host, fresh', web, converge.get('fresh_s', converge['fresh']['seconds']),
                           [entry['web'] for entry in fresh_rounds], converge['fresh'].get('execs')),
             _converge_row('plain-task baseline, fresh', base, converge.get('baseline_fresh_s', converge['baseline_fresh']['seconds']),
                           [entry['baseline'] for entry in fresh_rounds], converge['baseline_fresh'].get('execs'))]
    if converge.get('reruns'):
        lines += [_converge_row('web host, rerun', web, converge['rerun_s'], converge['reruns'], converge.get('rerun_execs')),
                  _converge_row('plain-task baseline, rerun', base,
                                converge['baseline_rerun_s'], converge['baseline_reruns'], converge.get('baseline_rerun_execs'))]
    first = converge.get('rest_of_stack')
    if first:
        lines.append(_converge_row('rest of the stack, first run (Redis, Celery, Loki, Promtail)', 'site.yml (no tags)',
                                   first['seconds'], [first], first.get('execs')))
    stack = converge.get('whole_stack', {})
    if stack.get('reruns'):
        lines.append(_converge_row('whole-stack host, rerun (against the same baseline reruns)', 'site.yml (no tags)',
                                   stack['rerun_s'], stack['reruns'], stack.get('rerun_execs')))
    ssh = converge.get('ssh', {})
    if ssh.get('reruns'):
        lines += [_converge_row('web host over SSH, rerun', web, ssh['rerun_s'], ssh['reruns'], ssh.get('rerun_execs')),
                  _converge_row('plain-task baseline over SSH, rerun', base, ssh['baseline_rerun_s'],
                                ssh['baseline_reruns'], ssh.get('baseline_rerun_execs'))]
    if ssh.get('skipped'):
        lines += ['', f'Over SSH: not measured ({ssh["skipped"]}).']
    elif ssh.get('reruns'):
        lines += ['', f'Over SSH: ansible.builtin.ssh to {ssh["address"]}:22 as root, pipelining on, ssh_args '
                  f'`{ssh["ssh_args"]}`, the master connection opened before the timed runs.']
    if len(fresh_rounds) > 1:
        lines += ['', 'Fresh rounds (seconds, in order): web host '
                  + ', '.join(f'{entry["web"]["seconds"]:.1f}' for entry in fresh_rounds) + '; baseline '
                  + ', '.join(f'{entry["baseline"]["seconds"]:.1f}' for entry in fresh_rounds) + '.']
    # Measured values only: the goals and whether they are met are in the Targets table (targets()).
    lines += ['', 'Against the baseline:', '', _row(['row', 'measured']), _row(['---', '---:'])]
    for row in converge_ratios(record):
        lines.append(_row([row['target'], '-' if row['value'] is None else f'{row["value"]}{row["suffix"]}']))
    return lines


def _render_memory(record: dict) -> list:
    memory = record.get('memory', {})
    if not memory:
        return []
    lines = ['', 'Memory of the Gunicorn unit under these loads (peak of its cgroup):', '',
             _row(['configuration', 'peak', 'MemoryHigh', 'MemoryMax', 'OOM kills']),
             _row(['---', '---:', '---:', '---:', '---:'])]
    for label, entry in memory.items():
        lines.append(_row([label, _num(entry['peak_mb'], 0, ' MB'), _num(entry['memory_high_mb'], 0, ' MB'),
                           _num(entry['memory_max_mb'], 0, ' MB'), entry['oom_kills']]))
    return lines


def render(record: dict) -> str:
    """The record as markdown: the machine, one table per part, the targets."""
    lines = _render_machine(record) + _render_io(record) + _render_cpu(record) + _render_cpu_use(record) + _render_celery(record)
    lines += _render_converge(record) + _render_memory(record)
    lines += ['', 'Targets:', '', _row(['target', 'measured', 'goal', 'met']), _row(['---', '---:', '---:', '---'])]
    for target in record.get('targets', []):
        met = {True: 'yes', False: '**no**', None: 'not measured'}[target['met']]
        lines.append(_row([target['target'], '-' if target['value'] is None else target['value'], target['goal'], met]))
    return '\n'.join(lines)
