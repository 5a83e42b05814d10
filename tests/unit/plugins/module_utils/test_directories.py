# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The directory helper the files and account modules share: a directory brought to its owner, group and mode,
changing only what differs, on a real directory of the test's own."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.flaskfleet.stack.plugins.module_utils.directories import NotADirectory, ensure_directory

UID, GID = os.getuid(), os.getgid()


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_missing_directory_is_made_with_its_parents_0755_under_any_umask(tmp_path):
    path = tmp_path / 'a' / 'b' / 'dir'
    old = os.umask(0o077)
    try:
        changed, before = ensure_directory(str(path), UID, GID, 0o750)
    finally:
        os.umask(old)
    assert (changed, before) == (True, None)
    assert _mode(path) == 0o750 and _mode(tmp_path / 'a') == 0o755 and _mode(tmp_path / 'a' / 'b') == 0o755


@pytest.mark.parametrize('mode, expected', [
    (0o750, False),  # as wanted: nothing to do (a rerun)
    (0o700, True),   # its mode changed by hand: set back
    (0o755, True),
])
def test_a_directory_is_changed_only_when_its_mode_differs(tmp_path, mode, expected):
    path = tmp_path / 'dir'
    path.mkdir()
    os.chmod(path, mode)
    changed, before = ensure_directory(str(path), UID, GID, 0o750)
    assert changed is expected and stat.S_IMODE(before.st_mode) == mode
    assert _mode(path) == 0o750


def test_another_owner_or_group_is_a_difference(tmp_path):
    path = tmp_path / 'dir'
    path.mkdir(mode=0o750)
    os.chmod(path, 0o750)
    # the check mode answer for an owner or a group the directory does not have, changing nothing
    assert ensure_directory(str(path), UID + 1, GID, 0o750, check_mode=True)[0] is True
    assert ensure_directory(str(path), UID, GID + 1, 0o750, check_mode=True)[0] is True
    assert os.lstat(path).st_uid == UID and os.lstat(path).st_gid == GID


def test_check_mode_reports_and_makes_nothing(tmp_path):
    path = tmp_path / 'parent' / 'dir'
    assert ensure_directory(str(path), UID, GID, 0o750, check_mode=True) == (True, None)
    assert not (tmp_path / 'parent').exists()
    (tmp_path / 'closed').mkdir()
    os.chmod(tmp_path / 'closed', 0o700)
    assert ensure_directory(str(tmp_path / 'closed'), UID, GID, 0o750, check_mode=True)[0] is True
    assert _mode(tmp_path / 'closed') == 0o700


def test_a_file_where_the_directory_goes_is_refused(tmp_path):
    path = tmp_path / 'dir'
    path.write_text('not a directory')
    with pytest.raises(NotADirectory):
        ensure_directory(str(path), UID, GID, 0o750)
    assert path.read_text() == 'not a directory'
