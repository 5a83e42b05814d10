#!/usr/bin/python
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: staged
short_description: Put a service's staged files live, or back, in one remote call
version_added: 0.1.0
description:
  - The other half of M(flaskfleet.stack.files)' O(flaskfleet.stack.files#module:files[].stage) option, which writes a
    changed file beside its destination as C(<path>.staged), where nothing reads it (a service's environment file,
    configuration or unit).
  - V(commit) renames each C(<path>.staged) over C(<path>) (atomic), keeping what was live as C(<path>.previous).
  - V(revert) renames each C(<path>.previous) back over C(<path>), the files a failed health check must take back.
  - V(discard) removes each C(<path>.staged), changes a rolled-back run leaves to its next run.
options:
  paths:
    description: The live paths (not the C(.staged) or C(.previous) ones).
    type: list
    elements: path
    required: true
  action:
    description: What to do with each path's staged or previous copy; a path without one is left alone.
    type: str
    choices: [commit, revert, discard]
    required: true
attributes:
  check_mode:
    support: full
    description: Reports the paths it would act on; renames nothing.
  diff_mode:
    support: none
    description: Renames only; M(flaskfleet.stack.files) shows the staged content's diff when it stages it.
  platform:
    support: full
    platforms: posix
    description: Debian hosts.
author:
  - flaskfleet.stack contributors (@flaskfleet)
"""

EXAMPLES = r"""
- name: Put the service's staged files live
  flaskfleet.stack.staged:
    paths:
      - /etc/flaskfleet/app.env
      - /etc/systemd/system/gunicorn-app.service
    action: commit
  register: committed

- name: Take them back after a failed health check
  flaskfleet.stack.staged:
    paths: "{{ committed.paths }}"
    action: revert
"""

RETURN = r"""
paths:
  description: The live paths acted on (committed, reverted or whose staged copy was removed), in order.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

STAGED = '.staged'
PREVIOUS = '.previous'


def _commit(path):
    if not os.path.lexists(path + STAGED):
        return False
    if os.path.lexists(path):
        # a hard link keeps what is live under its second name until the rename replaces it
        keep = path + PREVIOUS + '.new'
        if os.path.lexists(keep):
            os.unlink(keep)
        os.link(path, keep)
        os.replace(keep, path + PREVIOUS)
    os.replace(path + STAGED, path)
    return True


def _revert(path):
    if not os.path.lexists(path + PREVIOUS):
        return False
    os.replace(path + PREVIOUS, path)
    return True


def _discard(path):
    if not os.path.lexists(path + STAGED):
        return False
    os.unlink(path + STAGED)
    return True


ACTIONS = {'commit': (_commit, STAGED), 'revert': (_revert, PREVIOUS), 'discard': (_discard, STAGED)}


def act(action, paths, check_mode=False):
    """Apply `action` to each path; returns the paths acted on."""
    step, suffix = ACTIONS[action]
    if check_mode:
        return [path for path in paths if os.path.lexists(path + suffix)]
    return [path for path in paths if step(path)]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            action=dict(type='str', choices=sorted(ACTIONS), required=True),
        ),
        supports_check_mode=True,
    )
    try:
        paths = act(module.params['action'], module.params['paths'], module.check_mode)
    except OSError as error:
        module.fail_json(msg=f"{module.params['action']} of {error.filename}: {error.strerror}")
    module.exit_json(changed=bool(paths), paths=paths)


if __name__ == '__main__':
    main()
