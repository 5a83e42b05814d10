# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack.wsgi_target filter."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskfleet.stack.plugins.filter.wsgi import FilterModule

TARGET = FilterModule().filters()['wsgi_target']


@pytest.mark.parametrize('value, expected', [
    ('shop:app', ('shop', 'app', False, '')),
    ('shop.web.main:application', ('shop.web.main', 'application', False, '')),
    ('shop', ('shop', 'application', False, '')),
    ('shop:create_app()', ('shop', 'create_app', True, '')),
    ("shop.web:create_app('production')", ('shop.web', 'create_app', True, "'production'")),
    ('shop:make(1, debug=False, cfg={"a": [1, 2]})', ('shop', 'make', True, "1, debug=False, cfg={'a': [1, 2]}")),
    ('shop:make(None, -1.5, (1,))', ('shop', 'make', True, 'None, -1.5, (1,)')),
    (' shop:app ', ('shop', 'app', False, '')),
])
def test_accepted(value, expected):
    got = TARGET(value)
    assert (got['module'], got['name'], got['call'], got['args_source']) == expected


@pytest.mark.parametrize('value, why', [
    ('shop:', 'does not parse'),
    (':app', 'dotted module'),
    ('shop-web:app', 'dotted module'),
    ('shop:app.wsgi_app', 'a name or a call'),
    ('shop:a + b', 'a name or a call'),
    ('shop:obj.factory()', 'plain name'),
    ('shop:create_app(os.environ)', 'not a Python literal'),
    ('shop:create_app(*args)', 'no *args'),
    ('shop:create_app(**kw)', 'no *args'),
    ('shop:create_app(', 'does not parse'),
    ('shop:app; import os', 'does not parse'),
    (42, 'not a string'),
])
def test_refused(value, why):
    with pytest.raises(AnsibleFilterError, match=re.escape(why)) as error:
        TARGET(value)
    assert 'flaskfleet.stack.wsgi_target' in str(error.value)


def test_args_source_evaluates_back_to_the_arguments():
    got = TARGET("m:f('a\\'b', x=[1, {'k': None}])")
    assert eval(f"(lambda *a, **k: (a, k))({got['args_source']})") == (("a'b",), {'x': [1, {'k': None}]})  # pylint: disable=eval-used


def test_error_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="flask_app_wsgi 'shop:a.b'"):
        TARGET('shop:a.b', variable='flask_app_wsgi')
