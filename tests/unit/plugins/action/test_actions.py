# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's action plugins (checks, files) run by the ansible-playbook of the Python running the tests,
so each ansible-core line of `make test` runs them: a playbook on the controller, connection local."""

from __future__ import annotations

import grp
import json
import os
import pathlib
import pwd
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve()
COLLECTION = HERE.parents[4]
PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / 'ansible-playbook'


def _collections_path():
    # this copy of the collection first (the tree ansible-test uses, .../ansible_collections/flaskfleet/stack,
    # else the checkout's link .cache/self), then the project's (make exports them: ansible.posix's json callback)
    own = str(COLLECTION.parents[2] if COLLECTION.parents[1].name == 'ansible_collections' else COLLECTION / '.cache' / 'self')
    return ':'.join([own] + [path for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(':') if path])


def play(tmp_path, tasks, extra=None, *options):
    role = tmp_path / 'roles' / 'probe'
    (role / 'tasks').mkdir(parents=True, exist_ok=True)
    (role / 'templates').mkdir(exist_ok=True)
    (role / 'templates' / 'site.conf.j2').write_text(
        '{{ ansible_managed | comment }}\nname {{ site }};\n{% if extra %}\nextra on;\n{% endif %}\n')
    (role / 'tasks' / 'main.yml').write_text(json.dumps(tasks))
    (tmp_path / 'play.yml').write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'roles': ['probe']}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_path(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
    proc = subprocess.run([str(PLAYBOOK_BIN), '-i', 'localhost,', '-c', 'local', '-e', f'ansible_python_interpreter={sys.executable}',
                           '-e', json.dumps(extra or {}), *options, str(tmp_path / 'play.yml')],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    try:
        results = [task['hosts']['localhost'] for entry in json.loads(proc.stdout)['plays'] for task in entry['tasks']]
    except (ValueError, KeyError) as error:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:]) from error
    return proc.returncode, results


CHECKS = [{'flaskfleet.stack.checks': {'checks': [
    {'that': 'workers >= 1', 'msg': 'workers must be at least 1, got {{ workers }}'},
    {'that': 'site is match("^[a-z]+$")', 'msg': 'site must be lowercase letters, got {{ site }}'},
    {'that': ['ports | length == 2', 'ports[0] < ports[1]'], 'msg': 'ports: two, rising ({{ ports }})'},
    {'that': 'tls_resolvers | length > 0', 'when': 'tls_stapling', 'msg': 'tls_resolvers: one at least'},
    {'that': '{{ per_kind[kind] }}', 'msg': 'kind {{ kind }}: {{ undefined_here }}'},
    {'that': 'ports | length == 2', 'when': 'tls_stapling and tls_resolvers | length > 0 and tls_resolvers[0] > 0', 'msg': 'ports for stapling'},
]}}]
GOOD = {'workers': 2, 'site': 'app', 'ports': [80, 443], 'tls_stapling': False, 'tls_resolvers': [],
        'kind': 'a', 'per_kind': {'a': ['site | length > 0'], 'b': ['site | length > 50']}}


@pytest.mark.parametrize('changes, problems', [
    ({}, []),
    ({'workers': 0}, ['workers must be at least 1, got 0']),
    # every problem at once, in order
    ({'workers': 0, 'site': 'App', 'ports': [443, 80]},
     ['workers must be at least 1, got 0', 'site must be lowercase letters, got App', 'ports: two, rising ([443, 80])']),
    ({'tls_stapling': True}, ['tls_resolvers: one at least']),
    # a template that yields the conditions; a message that cannot be templated is shown as written
    ({'kind': 'b'}, ['kind {{ kind }}: {{ undefined_here }}']),
    # a value of the wrong kind: the check does not hold, the reason is appended
    ({'workers': 'lots'}, ['workers must be at least 1, got lots (cannot be evaluated:']),
    # a `when` that cannot be evaluated is a problem, not a check skipped in silence
    ({'tls_stapling': True, 'tls_resolvers': ['x']},
     ['ports for stapling (its when cannot be evaluated:']),
])
def test_checks_report_every_problem_at_once(tmp_path, changes, problems):
    rc, results = play(tmp_path, CHECKS, {**GOOD, **changes})
    assert (rc != 0) == bool(problems)
    reported = results[-1]['problems']
    assert len(reported) == len(problems), reported
    for got, wanted in zip(reported, problems):
        assert got.startswith(wanted), reported
    assert results[-1]['changed'] is False


SPEC = {'argument_specs': {'preflight': {'short_description': 'The probe role', 'options': {
    'workers': {'type': 'int', 'required': True, 'description': 'Workers.'},
    'site': {'type': 'str', 'choices': ['app', 'admin'], 'description': 'The site.'},
    'ports': {'type': 'list', 'elements': 'int', 'description': 'Ports.'},
}}}}


@pytest.mark.parametrize('changes, errors, problems', [
    ({}, [], []),
    # the spec accepts, then the checks run: theirs are the problems
    ({'workers': 0}, [], ['workers must be at least 1, got 0']),
    ({'workers': 'lots'}, ["argument 'workers' is of type str"], []),
    # every refused variable at once; the checks are not evaluated then
    ({'workers': 'lots', 'site': 'blog'}, ["argument 'workers' is of type str", "value of site must be one of: app, admin"], []),
])
def test_checks_validate_the_roles_argument_spec_first(tmp_path, changes, errors, problems):
    role = tmp_path / 'roles' / 'probe'
    (role / 'meta').mkdir(parents=True)
    (role / 'meta' / 'argument_specs.yml').write_text(json.dumps(SPEC))
    tasks = [{'flaskfleet.stack.checks': {'argument_spec': 'preflight', 'checks': CHECKS[0]['flaskfleet.stack.checks']['checks']}}]
    rc, results = play(tmp_path, tasks, {**GOOD, **changes})
    assert (rc != 0) == bool(errors or problems)
    result = results[-1]
    assert result['changed'] is False
    if errors:
        reported = result['argument_errors']
        assert len(reported) == len(errors), reported
        for wanted in errors:
            assert any(wanted in got for got in reported), reported
        assert 'Validation of arguments failed' in result['msg'] and result['problems'] == reported
    else:
        assert 'argument_errors' not in result
        assert [got[:len(wanted)] for got, wanted in zip(result['problems'], problems)] == problems
        assert len(result['problems']) == len(problems), result['problems']


def test_checks_name_a_missing_argument_spec(tmp_path):
    tasks = [{'flaskfleet.stack.checks': {'argument_spec': 'nowhere', 'checks': []}}]
    rc, results = play(tmp_path, tasks, GOOD)
    assert rc != 0 and "has no argument spec 'nowhere'" in results[-1]['msg'], results[-1]


def test_files_renders_like_template_and_writes_only_what_differs(tmp_path):
    target = tmp_path / 'etc'
    target.mkdir()
    tasks = [{'flaskfleet.stack.files': {'files': [
        {'dest': str(target / 'conf.d'), 'state': 'directory', 'mode': '0750', 'owner': '{{ me }}', 'group': '{{ my_group }}'},
        {'src': 'site.conf.j2', 'dest': str(target / 'conf.d' / 'site.conf'), 'mode': '0640',
         'owner': '{{ me }}', 'group': '{{ my_group }}', 'validate': 'sh -c \'! grep -q "^name bad;" "$1"\' check %s'},
        {'content': 'skipped', 'dest': str(target / 'never'), 'mode': '0644', 'when': '{{ false }}'},
        {'dest': str(target / 'enabled.conf'), 'state': 'link', 'target': str(target / 'conf.d' / 'site.conf')},
    ], 'check': f'test -s {target}/enabled.conf'}, 'register': 'written'},
        {'ansible.builtin.template': {'src': 'site.conf.j2', 'dest': str(tmp_path / 'by-template.conf'), 'mode': '0640'}}]
    ids = {'me': pwd.getpwuid(os.getuid()).pw_name, 'my_group': grp.getgrgid(os.getgid()).gr_name}
    rc, results = play(tmp_path, tasks, {'site': 'app', 'extra': True, **ids})
    assert rc == 0, results
    files = results[0]
    assert files['changed'] and len(files['changed_paths']) == 3
    site = target / 'conf.d' / 'site.conf'
    # byte for byte what ansible.builtin.template writes
    assert site.read_text() == (tmp_path / 'by-template.conf').read_text()
    assert 'extra on;' in site.read_text() and not (target / 'never').exists()
    rc, results = play(tmp_path, tasks, {'site': 'app', 'extra': True, **ids})
    assert rc == 0 and results[0]['changed'] is False and results[0]['changed_paths'] == []
    # check mode with --diff: reported, shown, not written
    rc, results = play(tmp_path, tasks, {'site': 'changed', 'extra': True, **ids}, '--check', '--diff')
    assert rc == 0 and results[0]['changed_paths'] == [str(site)]
    assert 'name changed;' in results[0]['diff'][0]['after'] and 'name app;' in site.read_text()
    # a file its check refuses is not written; the message names it
    rc, results = play(tmp_path, tasks, {'site': 'bad', 'extra': True, **ids})
    assert rc != 0 and results[0]['failed']
    assert results[0]['msg'].startswith(f'{site}: not replaced: its check'), results[0]['msg']
    assert 'name app;' in site.read_text()


def test_files_unpacks_a_tree_packed_on_the_controller_only_as_fingerprinted(tmp_path):
    source, host = tmp_path / 'source', tmp_path / 'host'
    (source / 'pkg').mkdir(parents=True)
    (source / 'pkg' / 'app.py').write_text('print("hi")\n')
    (source / 'big.bin').write_bytes(os.urandom(9 * 1024 * 1024))  # over the 8 MiB that travel in the arguments
    host.mkdir()
    pack = f'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C {source} -cf - .'
    digest = subprocess.run(f'{pack} | sha256sum', shell=True, capture_output=True, text=True, check=True).stdout.split()[0]
    ids = {'owner': pwd.getpwuid(os.getuid()).pw_name, 'group': grp.getgrgid(os.getgid()).gr_name}

    def tasks(dest, sha256):
        return [{'flaskfleet.stack.files': {'files': [
            {'dest': str(dest), 'state': 'tree', 'mode': '0750', 'archive_command': pack, 'archive_sha256': sha256, **ids},
        ]}}]
    # a tree changed since its fingerprint: nothing on the host
    rc, results = play(tmp_path, tasks(host / 'stale', 'ab' * 6))
    assert rc != 0 and 'the tree on the controller changed during the run' in results[0]['msg'], results
    assert f'fingerprinted as {"ab" * 6}' in results[0]['msg'] and os.listdir(host) == []
    # check mode: reported, nothing packed or written
    rc, results = play(tmp_path, tasks(host / 'big', digest), None, '--check')
    assert rc == 0 and results[0]['changed_paths'] == [str(host / 'big')] and os.listdir(host) == []
    # the big tree travels as a file in the task's temporary directory (removed after)
    rc, results = play(tmp_path, tasks(host / 'big', digest[:12]))
    assert rc == 0 and results[0]['changed_paths'] == [str(host / 'big')], results
    assert (host / 'big' / 'pkg' / 'app.py').read_text() == 'print("hi")\n'
    assert (host / 'big' / 'big.bin').read_bytes() == (source / 'big.bin').read_bytes()
    assert sorted(os.listdir(host)) == ['big'] and (os.stat(host / 'big').st_mode & 0o777) == 0o750
    rc, results = play(tmp_path, tasks(host / 'big', digest))
    assert rc == 0 and results[0]['changed'] is False
    # a small one in the module's arguments, shown as hidden in the result
    (source / 'big.bin').unlink()
    digest = subprocess.run(f'{pack} | sha256sum', shell=True, capture_output=True, text=True, check=True).stdout.split()[0]
    rc, results = play(tmp_path, tasks(host / 'small', digest))
    assert rc == 0 and sorted(os.listdir(host / 'small')) == ['pkg'], results
