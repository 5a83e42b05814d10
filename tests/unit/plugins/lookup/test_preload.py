# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""flaskfleet.stack.preload, run by the ansible-playbook of the Python running the tests (each ansible-core line of
`make test`): a task's worker, forked after a play whose hosts called the lookup, starts with the plugins it loaded
(and without them when the play did not call it); the lookup returns its terms; a load that fails is reported and
leaves the others."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve()
COLLECTION = HERE.parents[4]
PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / 'ansible-playbook'

# What a task's worker finds loaded when it starts (before its own task loads anything), reported by an action
# plugin of the playbook's directory: the collection's filter and action modules, ansible-core's Jinja plugin
# caches, the ssh connection.
PROBE = '''
import sys
from ansible.plugins import loader
from ansible.plugins.action import ActionBase

class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        names = sorted(sys.modules)
        return {
            'changed': False,
            'filters': sorted(n.rsplit('.', 1)[1] for n in names if n.startswith('ansible_collections.flaskfleet.stack.plugins.filter.')),
            'actions': sorted(n.rsplit('.', 1)[1] for n in names if n.startswith('ansible_collections.flaskfleet.stack.plugins.action.')),
            'jinja_cached': bool(loader.filter_loader._cached_non_collection_wrappers) and bool(loader.test_loader._cached_non_collection_wrappers),
            'ssh': any(n.endswith('.connection.ssh') for n in names),
        }
'''


def _own_root():
    # the directory that holds ansible_collections/flaskfleet/stack: the tree's (ansible-test's layout), else the
    # checkout's link .cache/self (make test runs these tests from both)
    return COLLECTION.parents[2] if COLLECTION.parents[1].name == 'ansible_collections' else COLLECTION / '.cache' / 'self'


def _collections_path():
    return ':'.join([str(_own_root())] + [path for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(':') if path])


def _run(tmp_path, hosts, verbosity=()):
    (tmp_path / 'action_plugins').mkdir(exist_ok=True)
    (tmp_path / 'action_plugins' / 'loaded_here.py').write_text(PROBE)
    (tmp_path / 'play.yml').write_text(json.dumps([{'hosts': hosts, 'gather_facts': False,
                                                    'tasks': [{'name': 'What the worker started with', 'loaded_here': {}}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_path(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
    proc = subprocess.run([str(PLAYBOOK_BIN), '-i', 'localhost,', '-c', 'local', '-e', f'ansible_python_interpreter={sys.executable}',
                           *verbosity, str(tmp_path / 'play.yml')], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index('{'):])
    return report['plays'][0]['play']['name'], report['plays'][0]['tasks'][0]['hosts']['localhost'], proc.stdout + proc.stderr


def _own(kind):
    return sorted(path.stem for path in (COLLECTION / 'plugins' / kind).glob('*.py'))


def test_a_worker_starts_with_what_the_lookup_loaded(tmp_path):
    play, loaded = _run(tmp_path, "{{ lookup('flaskfleet.stack.preload', 'localhost') }}")[:2]
    # the pattern came back as given: the play ran on localhost
    assert play == 'localhost'
    assert loaded['filters'] == _own('filter')
    assert set(loaded['actions']) >= set(_own('action'))
    assert loaded['jinja_cached'] and loaded['ssh']


def test_without_the_lookup_a_worker_loads_them_itself(tmp_path):
    # the same play, hosts as a plain pattern: the worker starts without them (what the lookup saves)
    loaded = _run(tmp_path, 'localhost')[1]
    assert loaded['filters'] == [] and loaded['actions'] == []
    assert not loaded['jinja_cached']


def test_the_terms_come_back_unchanged(tmp_path):
    play = _run(tmp_path, "{{ lookup('flaskfleet.stack.preload', 'localhost', 'nowhere') }}")[0]
    assert play == 'localhost,nowhere'


def test_every_load_succeeds_in_a_run(tmp_path):
    # at -vvv the lookup names each plugin it could not load: none here
    loaded, output = _run(tmp_path, "{{ lookup('flaskfleet.stack.preload', 'localhost') }}", ('-vvv',))[1:]
    assert 'flaskfleet.stack.preload:' not in output and loaded['filters']


def test_a_load_that_fails_is_reported_and_leaves_the_others():
    sys.path.insert(0, str(_own_root()))
    try:
        from ansible_collections.flaskfleet.stack.plugins.lookup import preload  # pylint: disable=import-outside-toplevel
    finally:
        sys.path.pop(0)
    ran = []

    def broken():
        raise ImportError('no such module')

    original = preload._steps
    preload._steps = lambda: [('first', lambda: ran.append('first')), ('broken', broken), ('last', lambda: ran.append('last'))]
    try:
        failed = preload.preload()
        # the lookup itself never fails: its terms come back
        assert preload.LookupModule().run(['web'], variables={}) == ['web']
    finally:
        preload._steps = original
    assert ran == ['first', 'last', 'first', 'last']
    assert [(what, str(error)) for what, error in failed] == [('broken', 'no such module')]
