# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack.promtail_source_problems filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskfleet.stack.plugins.filter.promtail import FilterModule

PROBLEMS = FilterModule().filters()['promtail_source_problems']
FORBIDDEN = ['request_id', 'path', 'status', 'task_id']
KEYS = ['name', 'kind', 'units', 'paths', 'labels', 'pipeline', 'enabled']
JOURNAL = {'name': 'app', 'kind': 'journal', 'units': ['gunicorn-*.service']}


def _with(**changes):
    return {**JOURNAL, **changes}


@pytest.mark.parametrize('source', [
    JOURNAL,
    {'name': 'nginx-access_1', 'kind': 'file', 'paths': ['/var/log/nginx/*.log'], 'enabled': False},
    _with(enabled='yes'),
    _with(units=['celery-app@default.service', 'redis-server@broker.service']),
    _with(labels={'service': 'web', 'tier2': 'front'}),
    _with(pipeline={'json': {'request_id': 'rid', 'level': 'level'}, 'structured_metadata': ['request_id']}),
    _with(pipeline={}),
])
def test_a_good_source_has_no_problem(source):
    assert PROBLEMS([source], FORBIDDEN, KEYS) == []


@pytest.mark.parametrize('source, part, says', [
    (_with(name='App'), 'must be a mapping of', "entry 'App'"),
    (_with(name=3), 'must be a mapping of', "entry '3'"),
    ({'kind': 'journal', 'units': ['x.service']}, 'must be a mapping of', "entry '?'"),
    (_with(colour='red'), 'must be a mapping of', 'unknown keys: colour'),
    (_with(kind='syslog'), 'must be a mapping of', "'kind': 'syslog'"),
    (_with(units='gunicorn.service'), 'must be a mapping of', 'non-empty list of systemd unit names'),
    (_with(units=[]), 'must be a mapping of', 'non-empty list'),
    (_with(units=['bad unit']), 'must be a mapping of', "'bad unit'"),
    ({'name': 'f', 'kind': 'file', 'paths': ['relative/x.log']}, 'must be a mapping of', 'absolute paths'),
    ({'name': 'f', 'kind': 'file'}, 'must be a mapping of', 'absolute paths'),
    (_with(enabled='maybe'), 'must be a mapping of', 'enabled true or false'),
    (_with(labels={'request_id': 'x'}), 'labels must map', 'never name request_id:'),
    (_with(labels={'host': 'x'}), 'labels must map', 'never name host:'),
    (_with(labels={'9lives': 'x'}), 'labels must map', "'9lives'"),
    (_with(labels={'tier': 3}), 'labels must map', "'tier': 3"),
    (_with(labels=['tier']), 'labels must map', "['tier']"),
    (_with(pipeline={'regex': 'x'}), 'pipeline may hold', "'regex'"),
    (_with(pipeline={'json': ['a']}), 'pipeline may hold', "['a']"),
    (_with(pipeline={'json': {'bad-field': 'x'}}), 'pipeline may hold', 'bad-field'),
    (_with(pipeline={'json': {'f': 1}}), 'pipeline may hold', "'f': 1"),
    (_with(pipeline={'json': {'f': 'f'}, 'structured_metadata': 'f'}), 'pipeline may hold', "'structured_metadata': 'f'"),
    (_with(pipeline={'json': {'f': 'f'}, 'structured_metadata': ['g']}), 'pipeline may hold', "['g']"),
    (_with(pipeline={'json': {'level': 'l'}, 'structured_metadata': ['level']}), 'pipeline may hold', "['level']"),
    (_with(pipeline='json'), 'pipeline may hold', "'json'"),
])
def test_a_bad_source_is_named_with_what_is_wrong(source, part, says):
    problems = PROBLEMS([JOURNAL, source], FORBIDDEN, KEYS)
    assert len(problems) == 1, problems
    assert problems[0].startswith('promtail_sources entry ') and part in problems[0], problems[0]
    assert says in problems[0], problems[0]


def test_every_problem_of_every_source_at_once():
    bad = {'name': 'Bad', 'kind': 'journal', 'units': [], 'labels': {'path': 'p'}, 'pipeline': {'x': 1}}
    problems = PROBLEMS([bad, JOURNAL, _with(name='other', labels={'status': '200'})], FORBIDDEN, KEYS)
    assert [p.split(':')[0] for p in problems] == [
        "promtail_sources entry 'Bad' must be a mapping of name, kind, units, paths, labels, pipeline, enabled",
        "promtail_sources entry 'Bad'", "promtail_sources entry 'Bad'", "promtail_sources entry 'other'"]


@pytest.mark.parametrize('sources', ['app', {'name': 'app'}, None])
def test_not_a_list_is_left_to_the_roles_own_check(sources):
    assert PROBLEMS(sources, FORBIDDEN, KEYS) == []


def test_an_entry_that_is_not_a_mapping():
    assert PROBLEMS(['app'], FORBIDDEN, KEYS) == [
        "promtail_sources entry 'app' must be a mapping of name, kind, units, paths, labels, pipeline, enabled."]


def test_the_tables_must_be_lists():
    with pytest.raises(AnsibleFilterError, match='promtail_source_problems'):
        PROBLEMS([JOURNAL], 'request_id', KEYS)
