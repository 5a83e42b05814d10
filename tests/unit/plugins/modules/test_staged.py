# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of flaskfleet.stack.staged: commit, revert and discard of staged files."""

from __future__ import annotations

import pytest

from ansible_collections.flaskfleet.stack.plugins.modules.staged import act

# Each case: the files before (name -> content; None: absent), the action, the
# files after, whether the path was acted on.
CASES = [
    # commit: the stage goes live, the live file is kept as .previous
    ({"f": "old", "f.staged": "new"}, "commit", {"f": "new", "f.staged": None, "f.previous": "old"}, True),
    # commit of a file that was not there yet: nothing to keep
    ({"f": None, "f.staged": "new"}, "commit", {"f": "new", "f.previous": None}, True),
    # commit replaces an older .previous
    ({"f": "old", "f.staged": "new", "f.previous": "older"}, "commit", {"f": "new", "f.previous": "old"}, True),
    # nothing staged: nothing done, the live file untouched
    ({"f": "old"}, "commit", {"f": "old", "f.previous": None}, False),
    # revert: .previous goes back live
    ({"f": "new", "f.previous": "old"}, "revert", {"f": "old", "f.previous": None}, True),
    ({"f": "new"}, "revert", {"f": "new"}, False),
    # discard: the stage is dropped, the live file untouched
    ({"f": "old", "f.staged": "new"}, "discard", {"f": "old", "f.staged": None}, True),
    ({"f": "old"}, "discard", {"f": "old"}, False),
]


def _write(root, files):
    for name, content in files.items():
        if content is not None:
            (root / name).write_text(content)


def _read(root, name):
    path = root / name
    return path.read_text() if path.exists() else None


@pytest.mark.parametrize("before, action, after, acted", CASES)
def test_staged(tmp_path, before, action, after, acted):
    _write(tmp_path, before)
    path = str(tmp_path / "f")
    assert act(action, [path]) == ([path] if acted else [])
    for name, content in after.items():
        assert _read(tmp_path, name) == content, name


@pytest.mark.parametrize("before, action, _after, acted", CASES)
def test_check_mode_reports_and_renames_nothing(tmp_path, before, action, _after, acted):
    _write(tmp_path, before)
    path = str(tmp_path / "f")
    assert act(action, [path], check_mode=True) == ([path] if acted else [])
    for name, content in before.items():
        assert _read(tmp_path, name) == content, name


def test_commit_then_revert_gives_back_the_live_file(tmp_path):
    _write(tmp_path, {"f": "old", "f.staged": "new"})
    path = str(tmp_path / "f")
    assert act("commit", [path]) == [path]
    assert act("revert", [path]) == [path]
    assert _read(tmp_path, "f") == "old"
    assert _read(tmp_path, "f.staged") is None and _read(tmp_path, "f.previous") is None
