# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render a role's managed files on the controller and bring them to their state on the host in one call.

Documentation lives in plugins/modules/files.py. Templates (src) are rendered
as ansible.builtin.template renders them (trim_blocks, the task's variables,
ansible_managed); role files (copy) are read as text; a tree's tar is packed
by its archive_command on the controller and checked against its sha256. The
module then compares, validates and writes on the host in one remote execution.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Mapping

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

FQCN = 'flaskfleet.stack.files'
# A tree's tar up to this size travels in the module's arguments (base64); a larger one is transferred as a file
# into the task's temporary directory on the host first.
INLINE_MAX = 8 * 1024 * 1024


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

    def _pack(self, entry):
        """The tar a tree entry's archive_command prints on the controller, checked against its archive_sha256."""
        command = entry.pop('archive_command', None)
        wanted = entry.pop('archive_sha256', None) or ''
        if not command:
            raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: a tree needs its archive_command")
        if self._task.check_mode:
            return None
        proc = subprocess.run(command, shell=True, capture_output=True, check=False)  # noqa: S602 (the role's own command)
        if proc.returncode != 0:
            raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: packing the tree on the controller failed "
                                    f"(rc={proc.returncode}): {proc.stderr.decode('utf-8', 'replace').strip()}")
        digest = hashlib.sha256(proc.stdout).hexdigest()
        if not digest.startswith(wanted.strip().lower()):
            raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: the tree on the controller changed during the run (packed now "
                                    f"with sha256 {digest}, fingerprinted as {wanted} earlier in the run): nothing was "
                                    f"changed on the host; run again.")
        return proc.stdout

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        entries = self._task.args.get('files')
        if not isinstance(entries, list) or not all(isinstance(entry, Mapping) and entry.get('dest') for entry in entries):
            raise AnsibleActionFail(f'{FQCN}: files must be a list of mappings, each with a dest')
        prepared = []
        transfers = []  # (entry, tar) of trees too large to travel in the arguments
        for entry in entries:
            entry = dict(entry)
            if not boolean(entry.pop('when', True), strict=False):
                continue
            if len([key for key in ('src', 'copy', 'content') if key in entry]) > 1:
                raise AnsibleActionFail(f"{FQCN}: {entry['dest']}: give one of src, copy and content")
            if entry.get('state') == 'tree':
                tar = self._pack(entry)
                if tar is not None and len(tar) > INLINE_MAX:
                    transfers.append((entry, tar))
                elif tar is not None:
                    entry['archive'] = base64.b64encode(tar).decode('ascii')
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
        try:
            if transfers:
                if not self._connection._shell.tmpdir:
                    self._make_tmp_path()
                remote_paths = []
                for index, (entry, tar) in enumerate(transfers):
                    remote = self._connection._shell.join_path(self._connection._shell.tmpdir, f'tree-{index}.tar')
                    remote_paths.append(self._transfer_data(remote, tar))
                    entry['archive_path'] = remote
                self._fixup_perms2([self._connection._shell.tmpdir] + remote_paths)
            result.update(self._execute_module(module_name=FQCN, module_args={'files': prepared, 'check': self._task.args.get('check')},
                                               task_vars=task_vars))
        finally:
            if transfers:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
