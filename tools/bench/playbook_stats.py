# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a playbook run did on the bench host, read from Ansible's output: its stats and module runs (the JSON
callback), its remote execs (the connection's -vvv lines)."""
from __future__ import annotations

import datetime
import re

# Actions that run on the controller only: they are tasks, not module runs on the host
# (checks: the collection's flaskfleet.stack.checks, an action without a connection).
CONTROLLER_ACTIONS = frozenset((
    'add_host', 'assert', 'checks', 'debug', 'fail', 'group_by', 'import_role', 'import_tasks', 'include_role',
    'include_tasks', 'include_vars', 'meta', 'pause', 'set_fact', 'set_stats', 'validate_argument_spec',
))


def _action(result: dict) -> str:
    """The short name of a result's action (ansible.builtin.copy -> copy)."""
    return str(result.get('action', '')).rsplit('.', 1)[-1]


def _on_controller(result: dict) -> bool:
    """Whether a task was delegated to the controller (a local connection)."""
    delegated = result.get('_ansible_delegated_vars') or {}
    return delegated.get('ansible_connection') == 'local' or delegated.get('ansible_delegated_host') in ('localhost', '127.0.0.1')


def _parse_time(text: str) -> datetime.datetime:
    """A callback timestamp (2026-11-30T15:25:19.110883Z) as an aware datetime."""
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def summarize_playbook(report: dict, host: str) -> dict:
    """Stats of one host, the module runs on it (loop items counted, controller-only actions not), the slowest tasks."""
    stats = report.get('stats', {}).get(host, {})
    module_runs = 0
    controller_runs = 0
    durations = []
    failed_tasks = []
    for play in report.get('plays', []):
        for task in play.get('tasks', []):
            result = task.get('hosts', {}).get(host)
            if result is None:
                continue
            if result.get('failed') or result.get('unreachable'):
                failed_tasks.append({'task': task['task']['name'], 'msg': str(result.get('msg', ''))[:500]})
            if result.get('skipped'):
                continue
            items = [item for item in result.get('results', []) if isinstance(item, dict)] if 'results' in result else [result]
            runs = sum(1 for item in items if not item.get('skipped'))
            if _action(result) in CONTROLLER_ACTIONS or _on_controller(result):
                controller_runs += runs
            else:
                module_runs += runs
            duration = task['task'].get('duration', {})
            if duration.get('start') and duration.get('end'):
                seconds = (_parse_time(duration['end']) - _parse_time(duration['start'])).total_seconds()
                durations.append((round(seconds, 2), task['task']['name']))
    durations.sort(reverse=True)
    return {
        'ok': stats.get('ok', 0), 'changed': stats.get('changed', 0), 'skipped': stats.get('skipped', 0),
        'failed': stats.get('failures', 0), 'task_results': stats.get('ok', 0) + stats.get('skipped', 0) + stats.get('failures', 0),
        'module_runs': module_runs, 'controller_runs': controller_runs,
        'task_seconds': round(sum(seconds for seconds, _name in durations), 1),
        'slowest_tasks': [{'seconds': seconds, 'task': name} for seconds, name in durations[:8]],
        'failed_tasks': failed_tasks,
    }


# What a remote exec is, as the record states it (docs/bench.md says more).
EXEC_COUNTING = (
    'A remote exec is one process the connection plugin starts on the host for the run. Counted from the '
    "connection's -vvv lines for the host (an extra untimed -vvv run after the timed reruns; the fresh runs log them "
    'to a file, ANSIBLE_LOG_VERBOSITY=3): containers.podman.podman logs "<host> EXEC: <command>" once per podman exec; '
    'community.docker.docker_api "<host> EXEC <command>"; ansible.builtin.ssh "<address> SSH: EXEC ssh ..." per '
    'command and "SSH: EXEC sftp|scp ..." per file transfer, each a session of its own on the host (sftp-server), '
    'so counted too. A PUT or FETCH of the container connections copies through the container\'s mount or podman '
    'cp, not an exec in the host: listed, not counted. Tasks run on the controller (set_fact, assert, delegated to '
    'localhost) make no remote exec.'
)

# "<host> EXEC: ..." (podman), "<host> EXEC ..." (docker_api, local), "<host> SSH: EXEC ssh|sftp|scp ...",
# "<host> PUT ..." and "<host> FETCH ..."; at the start of a line of -vvv output, or after the "| " of a log line.
_EXEC_LINE = re.compile(r'(?:^|\| )<(?P<address>[^>\n]+)> (?:SSH: EXEC (?P<program>\S+)|(?P<kind>EXEC|PUT|FETCH)[: ])',
                        re.MULTILINE)


def count_execs(text: str, address: str) -> dict:
    """The connection's remote execs for one host in -vvv output or an Ansible log: commands, file-transfer sessions
    (SSH's sftp or scp), and the PUT and FETCH lines (a container connection's copies are not execs)."""
    found = {'commands': 0, 'transfer_sessions': 0, 'puts': 0, 'fetches': 0}
    for match in _EXEC_LINE.finditer(text):
        if match.group('address') != address:
            continue
        program = match.group('program')
        if program is not None:
            name = program.rsplit('/', 1)[-1]
            if name in ('sftp', 'scp'):
                found['transfer_sessions'] += 1
            elif name in ('ssh', 'sshpass'):
                found['commands'] += 1
        elif match.group('kind') == 'EXEC':
            found['commands'] += 1
        elif match.group('kind') == 'PUT':
            found['puts'] += 1
        else:
            found['fetches'] += 1
    found['remote_execs'] = found['commands'] + found['transfer_sessions']
    found['address'] = address
    return found
