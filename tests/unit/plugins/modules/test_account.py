# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack.account module's decisions: which command brings a user to its
state (the host's state as the module reads it, given as data); its directories are the shared helper's
(tests/unit/plugins/module_utils/test_directories.py)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.flaskfleet.stack.plugins.modules.account import describe, read_user, user_command

WANT = {'name': 'promtail', 'home': '/var/lib/promtail', 'shell': '/usr/sbin/nologin', 'groups': ['adm', 'systemd-journal']}
AS_WANTED = {'gid': 990, 'home': '/var/lib/promtail', 'shell': '/usr/sbin/nologin', 'groups': ['adm', 'systemd-journal']}


@pytest.mark.parametrize('gid, found, expected', [
    # missing: made with its home, shell and supplementary groups, no home directory made
    (990, None, ['useradd', '--system', '--gid', 'promtail', '--home-dir', '/var/lib/promtail', '--no-create-home',
                 '--shell', '/usr/sbin/nologin', '--groups', 'adm,systemd-journal', 'promtail']),
    # as wanted: no command (a rerun)
    (990, AS_WANTED, None),
    # in more groups than asked: left alone (groups are added, never taken away)
    (990, dict(AS_WANTED, groups=['adm', 'docker', 'systemd-journal']), None),
    # one group missing: only that one appended
    (990, dict(AS_WANTED, groups=['adm']), ['usermod', '--append', '--groups', 'systemd-journal', 'promtail']),
    # a shell and a home changed by hand
    (990, dict(AS_WANTED, shell='/bin/bash', home='/root'),
     ['usermod', '--home', '/var/lib/promtail', '--shell', '/usr/sbin/nologin', 'promtail']),
    # another primary group
    (990, dict(AS_WANTED, gid=100), ['usermod', '--gid', 'promtail', 'promtail']),
    # the group made in this call (check mode: its gid unknown yet)
    (None, AS_WANTED, ['usermod', '--gid', 'promtail', 'promtail']),
])
def test_user_command(gid, found, expected):
    assert user_command('promtail', WANT, gid, found) == expected


def test_a_user_without_supplementary_groups_is_made_without_the_option():
    want = dict(WANT, name='loki', home='/var/lib/loki', groups=[])
    assert user_command('loki', want, 991, None) == [
        'useradd', '--system', '--gid', 'loki', '--home-dir', '/var/lib/loki', '--no-create-home',
        '--shell', '/usr/sbin/nologin', 'loki']


def test_the_reads_see_the_host(tmp_path):
    root = read_user('root')
    assert root['gid'] == 0 and root['home'] == '/root' and isinstance(root['groups'], list)
    assert read_user('no-such-user-flaskfleet') is None
    os.chmod(tmp_path, 0o750)
    assert describe(os.lstat(tmp_path)) == {'dir': True, 'uid': os.getuid(), 'gid': os.getgid(), 'mode': '0750'}
    assert describe(None) is None
