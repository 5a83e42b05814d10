# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render a role's managed files on the controller and bring them to their state on the host in one call.

Documentation lives in plugins/modules/files.py. Templates (src) are rendered
as ansible.builtin.template renders them (trim_blocks, the task's variables,
ansible_managed); role files (copy) are read as text. The module then
compares, validates and writes on the host in one remote execution.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

FQCN = 'flaskfleet.stack.files'


class ActionModule(ActionBase):
    """Render src templates and copy files locally, then run the module once with every entry's content."""

    TRANSFERS_FILES = False

    def _searchpath(self, task_vars, source):
        # as ansible.builtin.template: the play's search path, each with its templates/ subdirectory
        paths = list(task_vars.get('ansible_search_path', [])) + [self._loader.get_basedir(), os.path.dirname(source)]
        return [entry for path in paths for entry in (os.path.join(path, 'templates'), path)]

    def _render(self, entry, task_vars):
        source = self._find_needle('templates', entry['src'])
        text = trust_as_template(self._loader.get_text_file_contents(source))
        variables = dict(task_vars)
        variables.setdefault('ansible_managed', C.config.get_config_value('DEFAULT_MANAGED_STR'))
        templar = self._templar.copy_with_new_env(searchpath=self._searchpath(task_vars, source), available_variables=variables)
        rendered = templar.template(text, escape_backslashes=False, overrides=dict(trim_blocks=True, lstrip_blocks=False))
        return '' if rendered is None else str(rendered)

    def _read(self, entry):
        source = self._find_needle('files', entry['copy'])
        return self._loader.get_text_file_contents(source)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        entries = self._task.args.get('files')
        if not isinstance(entries, list) or not all(isinstance(entry, Mapping) and entry.get('dest') for entry in entries):
            raise AnsibleActionFail(f'{FQCN}: files must be a list of mappings, each with a dest')
        prepared = []
        for entry in entries:
            entry = dict(entry)
            if not boolean(entry.pop('when', True), strict=False):
                continue
            if len([key for key in ('src', 'copy', 'content') if key in entry]) > 1:
                raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: give one of src, copy and content")
            try:
                if 'src' in entry:
                    entry['content'] = self._render(entry, task_vars)
                elif 'copy' in entry:
                    entry['content'] = self._read(entry)
            except AnsibleError as error:
                raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: {error}") from error
            entry.pop('src', None)
            entry.pop('copy', None)
            prepared.append(entry)
        result.update(self._execute_module(module_name=FQCN, module_args={'files': prepared, 'check': self._task.args.get('check')}, task_vars=task_vars))
        return result
