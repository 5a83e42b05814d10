#!/usr/bin/python
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: files
short_description: Bring a role's set of managed files and directories to their state in one remote call
version_added: 0.1.0
description:
  - Compares every entry with what is on the host and writes only what differs, in the order given, in one run of
    the module on the host (one remote execution instead of two per unchanged template).
  - A changed file is written to a temporary file beside its destination, given its owner, group and mode, checked
    with its O(files[].validate) command, and only then renamed over the destination (atomic). A file that fails its
    check never replaces the one in place; the module stops there and reports which file and why.
  - The action plugin of the same name renders O(files[].src) templates (or reads O(files[].copy) files) on the
    controller, from the role's C(templates/) and C(files/) directories, with the task's variables; the module
    receives the rendered content.
  - A V(tree) entry puts a whole directory in place from a tar packed on the controller by the action plugin (from
    O(files[].archive_command), checked against O(files[].archive_sha256)), in the same call; the directory is
    either absent or complete. Its destination is named by its content (a release, a static content named by its
    digest), so one that exists is left as it is.
  - In check mode nothing is written and each entry that would change is reported; with C(--diff) each changed
    file's before and after are shown.
options:
  files:
    description: The entries, in the order they are brought to their state.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      state:
        description:
          - V(file) writes O(files[].content); V(directory) makes the directory (and missing parents, mode 0755); V(link) makes
            O(files[].dest) a symbolic link to O(files[].target); V(absent) removes a file or link.
          - V(tree) makes O(files[].dest) a directory holding the tar that O(files[].archive_command) prints on the
            controller, when O(files[].dest) does not exist yet (missing parents are made, mode 0755). The tar is
            unpacked into C(<dest>.unpacking) (what an interrupted call left there is removed first), every member
            owned by O(files[].owner) and O(files[].group) with the mode and time the tar gives it (O(files[].mode)
            and the time of the unpack for the directory itself), then renamed to O(files[].dest). A member with an
            absolute name or a C(..) component, one under a symbolic link, a link leading out of the tree, or a
            member of another kind than file, directory and link fails the entry.
        type: str
        choices: [file, directory, link, absent, tree]
        default: file
      target:
        description: What a V(link) points to.
        type: str
      src:
        description: A template of the role (C(templates/)), rendered on the controller by the action plugin.
        type: str
      copy:
        description: A file of the role (C(files/)), read on the controller by the action plugin.
        type: str
      content:
        description: The file's content, when neither O(files[].src) nor O(files[].copy) is given.
        type: str
      archive_command:
        description:
          - With V(tree), a shell command the action plugin runs on the controller (not in check mode); what it
            prints is the tar to unpack. Read by the action plugin only.
        type: str
      archive_sha256:
        description:
          - With V(tree), the sha256 the tar must have, or the start of it (a fingerprint taken earlier in the run);
            a tar that differs fails the task before anything changes on the host. Read by the action plugin only.
        type: str
      archive:
        description: The tar, base64-encoded (set by the action plugin from O(files[].archive_command), up to 8 MiB).
        type: str
      archive_path:
        description:
          - The tar's path on the host (set by the action plugin for a tar over 8 MiB, which it transfers into the
            task's temporary directory first).
        type: path
      owner:
        description: Owner name; default root.
        type: str
        default: root
      group:
        description: Group name; default root.
        type: str
        default: root
      mode:
        description: Octal mode as a string, for example V("0640"); required for files, directories and trees (the tree's top directory).
        type: str
      diff:
        description: Whether C(--diff) shows this file's content (false for keys and secrets).
        type: bool
        default: true
      links_only:
        description: With V(absent), remove O(files[].dest) only when it is a link (a regular file there is left alone).
        type: bool
        default: false
      when:
        description: The entry is skipped when false (a templated condition); the action plugin drops it before
          rendering, so its O(files[].src) or O(files[].copy) need not exist.
        type: bool
        default: true
      validate:
        description:
          - Command that checks a changed file before it replaces the destination; C(%s) is the temporary file's path.
          - Runs without a shell.
        type: str
      stage:
        description:
          - With V(file), a changed file goes (checked) to C(<dest>.staged) instead, where nothing reads it, and
            O(files[].dest) is left as it is until M(flaskfleet.stack.staged) commits it; O(files[].dest) is still
            reported in RV(changed_paths), and in RV(staged_paths). When O(files[].dest) already has the wanted
            content, owner and mode, a C(.staged) copy left by an earlier run is removed, as it is whenever a file
            is written in place (O(files[].stage=false)).
        type: bool
        default: false
  check:
    description:
      - A command (without a shell) that checks the whole set once something changed, for example V(nginx -t).
      - When it fails, every entry this call changed is put back as it was (files and links restored, new ones
        removed) and the module fails with the command's output, so the service keeps its running configuration
        and the files on disk pass the check again.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would change; writes nothing.
  diff_mode:
    support: full
    description: The before and after of each changed file.
  platform:
    support: full
    platforms: posix
    description: Debian hosts.
author:
  - flaskfleet.stack contributors (@flaskfleet)
"""

EXAMPLES = r"""
- name: Write Gunicorn's files
  flaskfleet.stack.files:
    files:
      - dest: /srv/app/gunicorn
        state: directory
        group: app
        mode: "0750"
      - src: etc/flaskfleet/gunicorn.conf.py.j2
        dest: /etc/flaskfleet/gunicorn-app.conf.py
        group: app
        mode: "0640"
        validate: /srv/app/venv/bin/python -m py_compile %s
  register: gunicorn_files

- name: Reload when the configuration changed
  ansible.builtin.debug:
    msg: reload
  when: "'/etc/flaskfleet/gunicorn-app.conf.py' in gunicorn_files.changed_paths"
"""

RETURN = r"""
changed_paths:
  description: The destinations that were (in check mode, would be) changed, in order.
  returned: always
  type: list
  elements: str
staged_paths:
  description: The destinations whose new content waits in C(<dest>.staged) (O(files[].stage)).
  returned: always
  type: list
  elements: str
created_paths:
  description:
    - The destinations of RV(changed_paths) that did not exist before the call (not even as a dangling link), in
      order. A service whose unit file is among them was not installed before, so it cannot be running.
  returned: always
  type: list
  elements: str
refused_paths:
  description: The destinations that were changed and then put back because an entry or O(check) failed.
  returned: on failure
  type: list
  elements: str
"""

import base64
import grp
import io
import os
import posixpath
import pwd
import shlex
import shutil
import stat
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.flaskfleet.stack.plugins.module_utils.directories import (
    NotADirectory, attrs_differ, ensure_directory, lstat_or_none, make_parents)

ENTRY = dict(
    dest=dict(type='path', required=True),
    state=dict(type='str', choices=['file', 'directory', 'link', 'absent', 'tree'], default='file'),
    target=dict(type='str'),
    src=dict(type='str'),
    copy=dict(type='str'),
    content=dict(type='str'),
    archive_command=dict(type='str'),
    archive_sha256=dict(type='str'),
    archive=dict(type='str', no_log=True),
    archive_path=dict(type='path'),
    owner=dict(type='str', default='root'),
    group=dict(type='str', default='root'),
    mode=dict(type='str'),
    validate=dict(type='str'),
    diff=dict(type='bool', default=True),
    links_only=dict(type='bool', default=False),
    when=dict(type='bool', default=True),
    stage=dict(type='bool', default=False),
)

STAGED = '.staged'  # the suffix flaskfleet.stack.staged commits
UNPACKING = '.unpacking'  # where a tree entry is unpacked before its rename


class Refused(Exception):
    """An entry that cannot be brought to its state; the message says why."""


def _ids(entry):
    try:
        return pwd.getpwnam(entry['owner']).pw_uid, grp.getgrnam(entry['group']).gr_gid
    except KeyError as error:
        raise Refused(f"no such user or group ({entry['owner']}:{entry['group']})") from error


def _run(module, command, path=None):
    """A validate or check command, under umask 022 (a service's, systemd's default) whatever the login's:
    what it makes as it runs is what the service would make (`nginx -t` opens, and so creates, the logs
    of a new site; under a login's 077 they were root's only, and Promtail could not read them)."""
    argv = [part.replace('%s', path) if path else part for part in shlex.split(command)]
    rc, out, err = module.run_command(argv, umask=0o022)
    return rc, ((err or '') + (out or '')).strip()


def _write_atomically(path, data, uid, gid, mode, check=None):
    """Write `data` to a temporary file beside `path` with its owner and mode, let `check` see it, rename it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        if check:
            check(tmp)
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _escapes(name):
    """Whether a tar member's name (or a link's target, relative to the tree) leads out of the tree."""
    normal = posixpath.normpath(name)
    return name.startswith('/') or normal == '..' or normal.startswith('../')


def _checked_members(tar):
    """The tar's members, each a file, directory or link that stays inside the tree (nothing under a symbolic
    link, a hard link only to a file of the tar); Refused otherwise."""
    members = tar.getmembers()
    by_name = {posixpath.normpath(member.name): member for member in members}
    symlinks = {name for name, member in by_name.items() if member.issym()}
    for member in members:
        name = posixpath.normpath(member.name)
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise Refused(f'the tar holds {member.name}, which is not a file, directory or link')
        if _escapes(member.name) or '..' in member.name.split('/'):
            raise Refused(f'the tar holds {member.name}, a name that leads out of the tree')
        parts = name.split('/')
        if any('/'.join(parts[:end]) in symlinks for end in range(1, len(parts))):
            raise Refused(f'the tar holds {member.name}, a name under a link')
        if member.issym() and (member.linkname.startswith('/')
                               or _escapes(posixpath.join(posixpath.dirname(name), member.linkname))):
            raise Refused(f'the tar holds {member.name}, a link to {member.linkname} outside the tree')
        if member.islnk():
            if _escapes(member.linkname) or '..' in member.linkname.split('/'):
                raise Refused(f'the tar holds {member.name}, a link to {member.linkname} outside the tree')
            target = by_name.get(posixpath.normpath(member.linkname))
            if target is None or not target.isreg():
                raise Refused(f'the tar holds {member.name}, a hard link to {member.linkname}, not a file of the tar')
    return members


def unpack_tree(tar_file, path, uid, gid, mode):
    """Unpack the tar (a file object) into <path>.unpacking, owned by uid:gid, the top directory given `mode`,
    then rename it to `path`. What an interrupted unpack left is removed first; a failure removes its own."""
    work = path + UNPACKING
    if os.path.lexists(work):
        if os.path.isdir(work) and not os.path.islink(work):
            shutil.rmtree(work)
        else:
            os.unlink(work)
    os.mkdir(work, 0o700)
    try:
        with tarfile.open(fileobj=tar_file, mode='r:') as tar:
            members = _checked_members(tar)
            # the data filter where the interpreter has it (3.12+): the checks above and below hold either way
            extra = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
            tar.extractall(work, members=members, **extra)  # nosec B202: members checked above
        top = os.path.realpath(work)
        for member in members:
            if member.issym():
                # a link made only of links that stay inside each (a -> ., b -> a/..) may still lead out
                resolved = os.path.realpath(os.path.join(work, member.name))
                if resolved != top and not resolved.startswith(top + os.sep):
                    raise Refused(f'the tar holds {member.name}, a link to {member.linkname} outside the tree')
        for root, dirs, files in os.walk(work):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)
        os.chown(work, uid, gid)
        os.chmod(work, mode)
        # the time of the unpack (the tar's './' would give it the tar's): what sorts contents by age reads it
        os.utime(work)
        os.rename(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


class Sync:
    """Bring entries to their state one by one, remembering how to undo each change."""

    def __init__(self, module):
        self.module = module
        self.check_mode = module.check_mode
        self.undo = []  # (path, previous bytes or None, previous stat or None, previous link target or None)
        self.changed_paths = []
        self.created_paths = []
        self.staged_paths = []
        self.trees = set()  # tree entries this call unpacked (rollback removes them whole)
        self.diffs = []

    def _remember(self, path, info, before=None):
        """Record how to put `path` back: its bytes (read here unless given), its link target, its stat."""
        link = None
        if before is None and info is not None and stat.S_ISREG(info.st_mode):
            with open(path, 'rb') as handle:
                before = handle.read()
        elif info is not None and stat.S_ISLNK(info.st_mode):
            link = os.readlink(path)
        self.undo.append((path, before, info, link))

    def directory(self, entry, uid, gid, mode):
        try:
            changed, before = ensure_directory(entry['dest'], uid, gid, mode, self.check_mode)
        except NotADirectory as error:
            raise Refused('exists and is not a directory') from error
        if changed and not self.check_mode:
            # put back: removed when this call made it, else its owner and mode
            self.undo.append((entry['dest'], None, before, None))
        return changed, None

    def file(self, entry, uid, gid, mode):
        if entry['stage']:
            return self.staged_file(entry, uid, gid, mode)
        path, wanted = entry['dest'], entry['content'].encode('utf-8')
        if lstat_or_none(path + STAGED) is not None:
            # written in place now: a copy an earlier run staged must never be committed over it
            self.absent(dict(entry, dest=path + STAGED, links_only=False))
        info = lstat_or_none(path)
        before = None
        if info is not None:
            if not stat.S_ISREG(info.st_mode):
                raise Refused('exists and is not a regular file')
            with open(path, 'rb') as handle:
                before = handle.read()
            if before == wanted:
                if not attrs_differ(info, uid, gid, mode):
                    return False, None
                if not self.check_mode:
                    self._remember(path, info, before)
                    os.chown(path, uid, gid)
                    os.chmod(path, mode)
                return True, None
        diff = {'before_header': path, 'after_header': path,
                'before': before.decode('utf-8', 'replace') if before is not None else '', 'after': entry['content']}
        if self.check_mode:
            return True, diff

        def check(tmp):
            if entry['validate']:
                rc, output = _run(self.module, entry['validate'], tmp)
                if rc != 0:
                    raise Refused(f"not replaced: its check ({entry['validate']}) failed with rc={rc}: {output}")
            self._remember(path, info, before)

        _write_atomically(path, wanted, uid, gid, mode, check)
        return True, diff

    def staged_file(self, entry, uid, gid, mode):
        """The file's new content, checked, in <dest>.staged; dest itself is not touched."""
        path = entry['dest']
        live = lstat_or_none(path)
        if live is not None and not stat.S_ISREG(live.st_mode):
            raise Refused('exists and is not a regular file')
        staged = dict(entry, dest=path + STAGED, stage=False)
        if live is not None and not attrs_differ(live, uid, gid, mode):
            with open(path, 'rb') as handle:
                if handle.read() == entry['content'].encode('utf-8'):
                    # live as wanted: a copy an earlier run staged is obsolete
                    if lstat_or_none(staged['dest']) is not None:
                        self.absent(staged)
                    return False, None
        _changed, diff = self.file(staged, uid, gid, mode)
        if diff:
            before = b''
            if live is not None:
                with open(path, 'rb') as handle:
                    before = handle.read()
            diff.update(before_header=path, after_header=path, before=before.decode('utf-8', 'replace'))
        self.staged_paths.append(path)
        return True, diff

    def link(self, entry):
        path, target = entry['dest'], entry['target']
        if not target:
            raise Refused('a link needs its target')
        info = lstat_or_none(path)
        if info is not None and stat.S_ISLNK(info.st_mode) and os.readlink(path) == target:
            return False, None
        if info is not None and not stat.S_ISLNK(info.st_mode):
            raise Refused('exists and is not a link')
        if not self.check_mode:
            self._remember(path, info)
            if info is not None:
                os.unlink(path)
            os.symlink(target, path)
        return True, None

    def tree(self, entry, uid, gid, mode):
        path = entry['dest']
        info = lstat_or_none(path)
        if info is not None:
            if stat.S_ISDIR(info.st_mode):
                return False, None  # named by its content: the tree is there
            raise Refused('exists and is not a directory')
        if self.check_mode:
            return True, None
        if entry['archive'] is not None:
            tar_file = io.BytesIO(base64.b64decode(entry['archive']))
        elif entry['archive_path']:
            tar_file = open(entry['archive_path'], 'rb')  # pylint: disable=consider-using-with
        else:
            raise Refused('a tree needs its archive (the action plugin packs it from archive_command)')
        try:
            make_parents(path)
            unpack_tree(tar_file, path, uid, gid, mode)
        except tarfile.TarError as error:
            # the data filter's refusals (3.12+: FilterError), where they come before the checks of this module
            what = 'leads out of the tree' if isinstance(error, getattr(tarfile, 'FilterError', ())) else 'cannot be read'
            raise Refused(f'the tar {what}: {error}') from error
        finally:
            tar_file.close()
        self.trees.add(path)
        self.undo.append((path, None, None, None))
        return True, None

    def absent(self, entry):
        path = entry['dest']
        info = lstat_or_none(path)
        if info is None:
            return False, None
        if stat.S_ISDIR(info.st_mode):
            raise Refused('is a directory: this module removes files and links only')
        if entry['links_only'] and not stat.S_ISLNK(info.st_mode):
            return False, None
        if not self.check_mode:
            self._remember(path, info)
            os.unlink(path)
        return True, None

    def apply(self, entry):
        state = entry['state']
        if state in ('file', 'directory', 'tree'):
            if entry['mode'] is None:
                raise Refused(f'a {state} needs a mode')
            try:
                mode = int(entry['mode'], 8)
            except ValueError as error:
                raise Refused(f"mode {entry['mode']!r} is not octal") from error
            uid, gid = _ids(entry)
            if state == 'directory':
                return self.directory(entry, uid, gid, mode)
            if state == 'tree':
                return self.tree(entry, uid, gid, mode)
            if entry['content'] is None:
                raise Refused('a file needs its content (the action plugin renders src or reads copy)')
            return self.file(entry, uid, gid, mode)
        return self.link(entry) if state == 'link' else self.absent(entry)

    def rollback(self):
        """Put back, newest first, what this call changed."""
        for path, before, info, link in reversed(self.undo):
            current = lstat_or_none(path)
            if path in self.trees:  # unpacked by this call, whole
                shutil.rmtree(path)
                continue
            if current is not None and stat.S_ISDIR(current.st_mode):
                if info is None:  # made by this call
                    os.rmdir(path)
                else:  # its owner or mode changed
                    os.chown(path, info.st_uid, info.st_gid)
                    os.chmod(path, stat.S_IMODE(info.st_mode))
                continue
            if before is not None:
                _write_atomically(path, before, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
                # its times too: a file put back is the file that was there (a reader that
                # compares times, such as nginx's staleness look, sees no change)
                os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
                continue
            if current is not None:
                os.unlink(path)
            if link is not None:
                os.symlink(link, path)


def sync_all(module, entries, check=None):
    """Bring every entry to its state, then run the set's check; on any failure put back what changed.

    Returns the Sync (its changed_paths and diffs) and an error message or None.
    """
    sync = Sync(module)
    for entry in entries:
        if not entry['when']:
            continue
        existed = lstat_or_none(entry['dest']) is not None
        try:
            changed, diff = sync.apply(entry)
        except (Refused, OSError) as error:
            sync.rollback()
            return sync, f"{entry['dest']}: {error}"
        if changed:
            sync.changed_paths.append(entry['dest'])
            if not existed:
                sync.created_paths.append(entry['dest'])
            if diff and entry['diff']:
                sync.diffs.append(diff)
    if check and sync.changed_paths and not module.check_mode:
        rc, output = _run(module, check)
        if rc != 0:
            sync.rollback()
            return sync, f'{check} failed with rc={rc}; every file this run changed was put back: {output}'
    return sync, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type='list', elements='dict', required=True, options=ENTRY),
            check=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    sync, error = sync_all(module, module.params['files'], module.params['check'])
    if error:
        module.fail_json(msg=error, changed=False, changed_paths=[], refused_paths=sync.changed_paths)
    result = {'changed': bool(sync.changed_paths or sync.undo), 'changed_paths': sync.changed_paths,
              'created_paths': sync.created_paths, 'staged_paths': sync.staged_paths}
    if module._diff and sync.diffs:
        result['diff'] = sync.diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
