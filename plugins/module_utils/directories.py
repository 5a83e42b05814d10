# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A path's state as the host has it, and a directory brought to its owner, group and mode: shared by the
flaskfleet.stack.files and flaskfleet.stack.account modules."""
from __future__ import annotations

import os
import stat


class NotADirectory(Exception):
    """Something other than a directory is where a directory is wanted."""


def lstat_or_none(path):
    """The path's lstat, or None when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def attrs_differ(info, uid, gid, mode):
    """Whether a stat's owner, group or permission bits differ from the wanted ones."""
    return info.st_uid != uid or info.st_gid != gid or stat.S_IMODE(info.st_mode) != mode


def make_parents(path):
    """The missing directories above path, 0755 whatever the login's umask (one under 077 would be root's
    only, and no service user could reach what is below it)."""
    missing = []
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent) and not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chmod(directory, 0o755)


def ensure_directory(path, uid, gid, mode, check_mode=False):
    """Make `path` a directory with this owner, group and mode (its missing parents 0755), changing only what
    differs; in check mode, change nothing. Returns (changed, the path's lstat before: None when this call made
    it, or would). Raises NotADirectory when something else is there."""
    info = lstat_or_none(path)
    if info is None:
        if not check_mode:
            make_parents(path)
            os.mkdir(path, mode)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return True, None
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectory(path)
    if not attrs_differ(info, uid, gid, mode):
        return False, info
    if not check_mode:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return True, info
