# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Run on the host by the flask_app role (python3 -c): one look at the app's
# interpreter, releases, static contents and links, its user, group and
# directories, printed as JSON. Reads only.
import grp
import json
import os
import pwd
import stat
import subprocess
import sys

paths = json.loads(sys.argv[1])


def link(path):
    try:
        return os.readlink(path) if path else ''
    except OSError:
        return ''


def python_version(python):
    """major.minor of the interpreter releases are built with ('' when it cannot run)."""
    try:
        out = subprocess.run([python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''
    return out


def readable(venv, version):
    """Whether users other than root can run the venv, as the app's user must: one built under a login's
    restrictive umask (077; or 027, with the group root) before the build set its own is root's only,
    and the service fails to start (203/EXEC)."""
    needs = [(venv, 0o005), (os.path.join(venv, 'bin'), 0o005), (os.path.join(venv, 'pyvenv.cfg'), 0o004),
             (os.path.join(venv, 'lib', 'python' + version, 'site-packages'), 0o005)]
    try:
        return all(os.stat(path).st_mode & bits == bits for path, bits in needs)
    except OSError:
        return False


def usable(release, version):
    """Whether a release is complete and its venv runs on the interpreter there is now: after an upgrade of
    the OS (Python 3.11 -> 3.13) the venv's python link leads to the new interpreter, which has none of
    the venv's lib/python3.11 packages; when an interpreter is removed, the link leads nowhere. And
    whether the app's user can read it."""
    venv = os.path.join(release, 'venv')
    return (os.path.exists(os.path.join(release, '.complete'))
            and os.path.exists(os.path.realpath(os.path.join(venv, 'bin', 'python')))
            and os.path.isdir(os.path.join(venv, 'lib', 'python' + version))
            and readable(venv, version))


def directories(parent, prefix=''):
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(parent, name)
        if name.startswith(prefix) and os.path.isdir(path) and not os.path.islink(path):
            found.append({'path': path, 'mtime': os.stat(path).st_mtime})
    return found


def account(spec):
    """The app's group and user as the host has them, and the owner, group and mode of its directories:
    what the role's account and directory steps compare before they run (a rerun runs none of them)."""
    if not spec:
        return {}
    try:
        group = grp.getgrnam(spec['group']).gr_gid
    except KeyError:
        group = None
    try:
        entry = pwd.getpwnam(spec['user'])
        user = {'gid': entry.pw_gid, 'home': entry.pw_dir, 'shell': entry.pw_shell}
    except KeyError:
        user = None
    dirs = {}
    for path in spec['dirs']:
        try:
            found = os.lstat(path)
        except OSError:
            dirs[path] = None
            continue
        dirs[path] = {'dir': stat.S_ISDIR(found.st_mode), 'uid': found.st_uid, 'gid': found.st_gid,
                      'mode': '%04o' % stat.S_IMODE(found.st_mode)}
    return {'group_gid': group, 'user': user, 'dirs': dirs}


static_dir = paths['static_dir']
version = python_version(paths['python'])
releases = directories(paths['releases'])
print(json.dumps({
    'python_version': version,
    # the releases this host can switch to as they are
    'usable': [found['path'] for found in releases if version and usable(found['path'], version)],
    'current': link(paths['current']),
    # what `current` replaced when it last switched (flask_app's switch sets the link)
    'previous': link(paths['previous']),
    'releases': releases,
    'static_content': bool(paths['static_content']) and os.path.isdir(paths['static_content']),
    'static_link': link(static_dir),
    'static_is_dir': bool(static_dir) and os.path.isdir(static_dir) and not os.path.islink(static_dir),
    'static_contents': directories(os.path.dirname(static_dir), os.path.basename(static_dir) + '-') if static_dir else [],
    'account': account(paths.get('account')),
}))
