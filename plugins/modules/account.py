#!/usr/bin/python
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: account
short_description: A service's system group, system user and directories brought to their state in one remote call
version_added: 0.1.0
description:
  - Reads the group, the user (primary group, home, shell, supplementary groups) and each directory (owner, group,
    mode) as the host has them, and changes only what differs, in one run of the module on the host; a rerun on a
    host that has them as wanted changes nothing and runs no command.
  - A missing group is made with C(groupadd --system), a missing user with C(useradd --system) (no home directory
    made, the login shell O(user.shell)); a user that differs is set right with C(usermod). Supplementary groups are
    added to the user's (C(usermod --append)), never taken away.
  - A directory is made when missing (its missing parents with mode 0755), then given its owner, group and mode.
  - In check mode nothing is changed and what would change is reported; with C(--diff) the before and after of
    each object that differs are shown.
options:
  group:
    description: The service's system group.
    type: str
    required: true
  user:
    description: The service's system user, whose primary group is O(group).
    type: dict
    required: true
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      home:
        description: Home directory (not made by the user's creation; list it in O(dirs) to have it made).
        type: path
        required: true
      shell:
        description: Login shell.
        type: path
        default: /usr/sbin/nologin
      groups:
        description: Supplementary groups the user must be in (added, never removed); they must exist.
        type: list
        elements: str
        default: []
  dirs:
    description: Directories, in the order they are made.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner name; default root.
        type: str
        default: root
      group:
        description: Group name; default root.
        type: str
        default: root
      mode:
        description: Octal mode as a string, for example V("0750").
        type: str
        required: true
attributes:
  check_mode:
    support: full
    description: Reports what would change; changes nothing.
  diff_mode:
    support: full
    description: The before and after of the group, the user and each directory that differs.
  platform:
    support: full
    platforms: posix
    description: Debian hosts (shadow's groupadd, useradd and usermod).
author:
  - flaskfleet.stack contributors (@flaskfleet)
"""

EXAMPLES = r"""
- name: Create Loki's group, user and data directory
  flaskfleet.stack.account:
    group: loki
    user:
      name: loki
      home: /var/lib/loki
    dirs:
      - path: /var/lib/loki
        owner: loki
        group: loki
        mode: "0750"
"""

RETURN = r"""
changed_objects:
  description: What was (in check mode, would be) made or set right, in order (C(group), C(user), then each
    directory's path).
  returned: always
  type: list
  elements: str
"""

import grp
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.flaskfleet.stack.plugins.module_utils.directories import NotADirectory, ensure_directory


def read_group(name):
    """The group's gid, or None when the host has no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def read_user(name):
    """The user's primary gid, home, shell and supplementary group names, or None when there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {'gid': entry.pw_gid, 'home': entry.pw_dir, 'shell': entry.pw_shell,
            'groups': sorted(found.gr_name for found in grp.getgrall() if name in found.gr_mem)}


def describe(found):
    """A path's lstat (None: nothing there) as --diff shows it: its type, owner, group and mode."""
    if found is None:
        return None
    return {'dir': stat.S_ISDIR(found.st_mode), 'uid': found.st_uid, 'gid': found.st_gid,
            'mode': '%04o' % stat.S_IMODE(found.st_mode)}


def user_command(group, user, gid, found):
    """The command that brings the user to what `user` wants, or None when it is as wanted, given the group's gid
    (None: not made yet) and the user as found (None: missing). Pure: the unit tests drive it with tables."""
    if found is None:
        argv = ['useradd', '--system', '--gid', group, '--home-dir', user['home'], '--no-create-home',
                '--shell', user['shell']]
        if user['groups']:
            argv += ['--groups', ','.join(user['groups'])]
        return argv + [user['name']]
    argv = ['usermod']
    if gid is None or found['gid'] != gid:
        argv += ['--gid', group]
    if found['home'] != user['home']:
        argv += ['--home', user['home']]
    if found['shell'] != user['shell']:
        argv += ['--shell', user['shell']]
    missing = [name for name in user['groups'] if name not in found['groups']]
    if missing:
        argv += ['--append', '--groups', ','.join(missing)]
    return argv + [user['name']] if len(argv) > 1 else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            group=dict(type='str', required=True),
            user=dict(type='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                home=dict(type='path', required=True),
                shell=dict(type='path', default='/usr/sbin/nologin'),
                groups=dict(type='list', elements='str', default=[]),
            )),
            dirs=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                owner=dict(type='str', default='root'),
                group=dict(type='str', default='root'),
                mode=dict(type='str', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    group, user = module.params['group'], module.params['user']
    changed, before, after = [], {}, {}

    def run(argv):
        if not module.check_mode:
            rc, out, err = module.run_command(argv)
            if rc != 0:
                module.fail_json(msg=f"{' '.join(argv)} failed: {(err or out).strip()}", changed_objects=changed)

    gid = read_group(group)
    if gid is None:
        changed.append('group')
        before['group'], after['group'] = None, group
        run(['groupadd', '--system', group])
        gid = read_group(group)
    found = read_user(user['name'])
    command = user_command(group, user, gid, found)
    if command:
        changed.append('user')
        before['user'] = found
        after['user'] = {'group': group, 'home': user['home'], 'shell': user['shell'],
                         'groups': sorted(set((found or {}).get('groups', [])) | set(user['groups']))}
        run(command)
    for wanted in module.params['dirs']:
        path, mode = wanted['path'], wanted['mode'].zfill(4)
        try:
            uid = pwd.getpwnam(wanted['owner']).pw_uid
            dir_gid = grp.getgrnam(wanted['group']).gr_gid
        except KeyError:
            if module.check_mode:  # the user or group this call would have made
                uid = dir_gid = None
            else:
                module.fail_json(msg=f"{path}: no such user or group ({wanted['owner']}:{wanted['group']})",
                                 changed_objects=changed)
        try:
            changed_dir, found_dir = ensure_directory(path, uid, dir_gid, int(mode, 8), module.check_mode)
        except NotADirectory:
            module.fail_json(msg=f"{path} is there and is not a directory", changed_objects=changed)
        if changed_dir:
            changed.append(path)
            before[path], after[path] = describe(found_dir), {'owner': wanted['owner'], 'group': wanted['group'], 'mode': mode}
    result = {'changed': bool(changed), 'changed_objects': changed}
    if changed and module._diff:
        result['diff'] = {'before': before, 'after': after}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
