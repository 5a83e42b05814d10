# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every check of a role's input in one task, every problem reported at once.

Documentation lives in plugins/modules/checks.py. The action runs on the
controller only: it evaluates each check's conditions with the task's
variables and templates a check's message only when that check fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

FQCN = 'flaskfleet.stack.checks'


def _plain(error):
    # ansible-core 2.19+ names its tagged types (_AnsibleTaggedStr): say str
    return re.sub(r'_AnsibleTagged([A-Za-z]+)', lambda m: m.group(1).lower(), error.replace('Error rendering expression: ', ''))


def _listify(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


class ActionModule(ActionBase):
    """Evaluate a list of checks; fail with the message of every check that does not hold."""

    _requires_connection = False

    @classmethod
    def finalize_task_arg(cls, name, value, templar, context):
        # The checks are evaluated one by one in run(): a message is templated
        # only for a check that failed (it may name values that exist only then).
        if name == 'checks':
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def _holds(self, condition):
        try:
            return bool(self._templar.evaluate_conditional(conditional=condition)), ''
        except AnsibleError as error:  # a value of the wrong kind: the check does not hold
            return False, str(error).splitlines()[0]

    def _message(self, check, condition):
        if 'msg' not in check:  # the condition's own error names the variable (a filter that raises)
            return f'{FQCN}: {condition} does not hold'
        try:
            return str(self._templar.template(check['msg']))
        except AnsibleError:
            return str(check['msg'])

    def _conditions(self, value):
        # `that` may be a template of a list of conditions, as assert's may
        if isinstance(value, str) and '{{' in value:
            try:
                value = self._templar.template(value)
            except AnsibleError as error:
                return [], str(error).splitlines()[0]
        return _listify(value), ''

    def _first_failing(self, that):
        """The first condition of a check that does not hold (None when all hold), and why it could not be evaluated."""
        conditions, error = self._conditions(that)
        if error:
            return that, error
        for condition in conditions:
            holds, error = self._holds(condition)
            if not holds:
                return condition, error
        return None, ''

    def _spec(self, entry):
        """The options of the task's role's argument spec for entry point `entry` (meta/argument_specs.yml)."""
        role = getattr(self._task, '_role', None)
        if role is None:
            raise AnsibleError(f'{FQCN}: argument_spec {entry!r} needs a task of a role')
        meta = os.path.join(role.get_role_path(), 'meta')
        for name in ('argument_specs.yml', 'argument_specs.yaml'):
            if os.path.exists(os.path.join(meta, name)):
                specs = (self._loader.load_from_file(os.path.join(meta, name)) or {}).get('argument_specs') or {}
                if entry in specs:
                    return specs[entry].get('options') or {}
        raise AnsibleError(f'{FQCN}: the role at {role.get_role_path()} has no argument spec {entry!r}')

    def _argument_errors(self, entry, task_vars):
        """What ansible-core's validation of a role's entry point says of the task's variables: the variables the
        spec names, templated, against its options (types, choices, required)."""
        spec = self._spec(entry)
        provided = self._templar.template({name: task_vars[name] for name in spec if name in task_vars})
        return list(ArgumentSpecValidator(spec).validate(provided, validate_role_argument_spec=True).error_messages)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        checks = self._task.args.get('checks')
        if not isinstance(checks, list) or not all(isinstance(c, Mapping) and 'that' in c for c in checks):
            result.update(failed=True, msg=f'{FQCN}: checks must be a list of mappings, each with that (and msg)')
            return result
        entry = self._task.args.get('argument_spec')
        if entry:
            # the role's argument spec first, in this task (no validation task of its own); the checks assume types
            # it accepted, so a variable it refuses fails the task before them
            errors = self._argument_errors(entry, task_vars or {})
            result['changed'] = False
            if errors:
                result.update(failed=True, argument_errors=errors, problems=errors,
                              msg=f'Validation of arguments failed (argument spec {entry!r}): ' + ' | '.join(errors))
                return result
        problems = []
        for check in checks:
            if 'when' in check:
                # a `when` that does not hold skips the check; one that cannot be evaluated is a problem
                skipped, error = self._first_failing(check['when'])
                if error:
                    problems.append(self._message(check, skipped) + f' (its when cannot be evaluated: {_plain(error)})')
                if skipped is not None:
                    continue
            failed, error = self._first_failing(check['that'])
            if failed is not None:
                problems.append(self._message(check, failed) + (f' (cannot be evaluated: {_plain(error)})' if error else ''))
        result['changed'] = False
        result['problems'] = problems
        if problems:
            result['failed'] = True
            result['msg'] = problems[0] if len(problems) == 1 else (
                f'{len(problems)} problems: ' + ' | '.join(problems))
        else:
            result['msg'] = f'{len(checks)} checks passed'
        return result
