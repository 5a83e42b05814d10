# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The flask_app role's look at the host (roles/flask_app/files/probe.py) calls a release usable only
when the app's user can run its venv: a release built under a login's restrictive umask (before the
build set its own) is rebuilt, not switched to or kept. Run as the role runs it, on release trees
made here with the modes each umask gives."""
from __future__ import annotations

import grp
import json
import os
import pathlib
import pwd
import subprocess
import sys

import pytest

PROBE = pathlib.Path(__file__).resolve().parents[2] / "roles" / "flask_app" / "files" / "probe.py"
VERSION = "%d.%d" % sys.version_info[:2]


def _release(root, umask, complete=True):
    """A release whose venv was made under umask (directories 0777, files 0666, less the umask)."""
    release = root / "releases" / f"r{umask:03o}"
    venv = release / "venv"
    site = venv / "lib" / f"python{VERSION}" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (site / "app.py").write_text("")
    for path in [venv, venv / "bin", venv / "lib", venv / "lib" / f"python{VERSION}", site]:
        path.chmod(0o777 & ~umask)
    for path in [venv / "pyvenv.cfg", site / "app.py"]:
        path.chmod(0o666 & ~umask)
    if complete:
        (release / ".complete").write_text("r\n")
    return release


def _usable(root):
    paths = {"python": sys.executable, "current": "", "previous": "", "releases": str(root / "releases"),
             "static_content": "", "static_dir": ""}
    out = subprocess.run([sys.executable, str(PROBE), json.dumps(paths)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["usable"]


@pytest.mark.parametrize(("umask", "complete", "usable"), [
    (0o022, True, True),    # Debian's default: what the build now sets for itself
    (0o002, True, True),
    (0o027, True, False),   # CIS: the venv's group is root's, others get nothing
    (0o077, True, False),   # root's only
    (0o022, False, False),  # an interrupted build
])
def test_a_release_is_usable_only_when_the_apps_user_can_run_its_venv(tmp_path, umask, complete, usable):
    release = _release(tmp_path, umask, complete)
    assert (str(release) in _usable(tmp_path)) is usable


def _account(spec):
    paths = {"python": sys.executable, "current": "", "previous": "", "releases": "", "static_content": "",
             "static_dir": "", "account": spec}
    out = subprocess.run([sys.executable, str(PROBE), json.dumps(paths)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["account"]


ME = pwd.getpwuid(os.getuid())
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


# (user, group, the directory's mode or None for none there): what the role's account and directory steps
# compare with what they would set, so that a rerun runs none of them and a drift or a first run runs each
@pytest.mark.parametrize(("user", "group", "mode"), [
    (ME.pw_name, MY_GROUP, 0o750),                        # a converged host: all there
    (ME.pw_name, MY_GROUP, 0o700),                        # a directory's mode changed by hand
    ("flaskfleet-no-such-user", MY_GROUP, 0o750),         # the user missing
    (ME.pw_name, "flaskfleet-no-such-group", None),       # a first run: no group, no directory
])
def test_the_look_reports_the_apps_account_and_directories_as_the_host_has_them(tmp_path, user, group, mode):
    home = tmp_path / "app"
    if mode is not None:
        home.mkdir()
        home.chmod(mode)
    found = _account({"user": user, "group": group, "dirs": [str(home)]})
    assert found["group_gid"] == (None if group.startswith("flaskfleet-") else os.getgid())
    assert found["user"] == (None if user.startswith("flaskfleet-") else
                             {"gid": ME.pw_gid, "home": ME.pw_dir, "shell": ME.pw_shell})
    assert found["dirs"] == {str(home): None if mode is None else
                             {"dir": True, "uid": os.getuid(), "gid": os.getgid(), "mode": "%04o" % mode}}
    assert _account(None) == {}
