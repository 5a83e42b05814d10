# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse a WSGI target the way Gunicorn does: ``module:app`` or ``module:factory(args)``.

Documentation lives in the sidecar file wsgi_target.yml. The filter is pure:
it reads its input string and returns a new dict.
"""

from __future__ import annotations

import ast
import re

from ansible.errors import AnsibleFilterError

FQCN = 'flaskfleet.stack.wsgi_target'
MODULE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')
# Gunicorn's default callable when only a module is given.
DEFAULT_NAME = 'application'


class _TargetError(AnsibleFilterError):
    def __init__(self, value, why, variable=None):
        where = f'{variable} ' if variable else ''
        super().__init__(f'{FQCN}: {where}{value!r} is not a WSGI target Gunicorn accepts ({why}); '
                         "use module:app or module:factory() with literal arguments, for example shop.web:create_app('production')")


def _literal(fail, node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError) as error:
        raise fail(f'argument {ast.unparse(node)} is not a Python literal') from error


def wsgi_target(value, variable=None):
    """Return {module, name, call, args_source} for a Gunicorn WSGI target string.

    variable names the setting the value came from, for the error message.
    """
    def fail(why):
        return _TargetError(value, why, variable)

    if not isinstance(value, str):
        raise fail('not a string')
    module, sep, expr = value.strip().partition(':')
    if not MODULE.match(module):
        raise fail(f'{module!r} is not a dotted module name')
    if not sep:
        expr = DEFAULT_NAME
    try:
        node = ast.parse(expr.strip(), mode='eval').body
    except SyntaxError as error:
        raise fail('the part after the colon does not parse') from error
    if isinstance(node, ast.Name):
        return {'module': module, 'name': node.id, 'call': False, 'args_source': ''}
    if not isinstance(node, ast.Call):
        raise fail('the part after the colon must be a name or a call')
    if not isinstance(node.func, ast.Name):
        raise fail('the factory must be a plain name')
    if any(isinstance(arg, ast.Starred) for arg in node.args) or any(kw.arg is None for kw in node.keywords):
        raise fail('no *args or **kwargs')
    # repr() of a literal is Python source that evaluates back to it.
    args = [repr(_literal(fail, arg)) for arg in node.args]
    args += [f'{kw.arg}={_literal(fail, kw.value)!r}' for kw in node.keywords]
    return {'module': module, 'name': node.func.id, 'call': True, 'args_source': ', '.join(args)}


class FilterModule:
    """flaskfleet.stack WSGI target filter."""

    def filters(self):
        return {'wsgi_target': wsgi_target}
