# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack.supervise_request filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskfleet.stack.plugins.filter.supervise import FilterModule

REQUEST = FilterModule().filters()['supervise_request']

SERVICES = {
    'gunicorn-shop': {'backend': 'supervisord', 'app': 'shop'},
    'celery-shop': {'backend': 'systemd', 'app': 'shop'},
    'gunicorn-blog': {'backend': 'systemd', 'app': 'blog'},
}


@pytest.mark.parametrize('pending, action, kwargs, expected', [
    ({}, 'reload', {'app': 'shop'}, {'celery-shop': 'reload', 'gunicorn-shop': 'reload'}),
    ({}, 'restart', {'services': ['gunicorn-blog']}, {'gunicorn-blog': 'restart'}),
    ({'gunicorn-shop': 'restart'}, 'reload', {'app': 'shop'}, {'celery-shop': 'reload', 'gunicorn-shop': 'restart'}),
    ({'gunicorn-shop': 'reload'}, 'restart', {'app': 'shop'}, {'celery-shop': 'restart', 'gunicorn-shop': 'restart'}),
    ({'gunicorn-blog': 'reload'}, 'reload', {'app': 'nope'}, {'gunicorn-blog': 'reload'}),
    ({}, 'reload', {'services': ['not-yet-installed']}, {'not-yet-installed': 'reload'}),
    ({}, 'reload', {}, {}),
])
def test_request(pending, action, kwargs, expected):
    registry = {'services': SERVICES, 'pending': pending}
    got = REQUEST(registry, action, **kwargs)
    assert got['pending'] == expected
    assert got['services'] == SERVICES
    assert registry['pending'] == pending  # the input is not modified


def test_empty_registry():
    assert REQUEST({}, 'restart', services=['x']) == {'services': {}, 'pending': {'x': 'restart'}}


@pytest.mark.parametrize('registry, action, kwargs, message', [
    ([], 'reload', {}, 'must be a mapping'),
    ({}, 'stop', {}, 'reload or restart'),
    ({}, 'reload', {'services': ['']}, 'non-empty strings'),
    ({}, 'reload', {'services': [3]}, 'non-empty strings'),
])
def test_refused(registry, action, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        REQUEST(registry, action, **kwargs)
