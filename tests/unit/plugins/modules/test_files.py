# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-driven tests of the flaskfleet.stack.files module's sync (what one call on a host does)."""

from __future__ import annotations

import base64
import grp
import io
import os
import pwd
import shutil
import stat
import subprocess
import tarfile
import time

import pytest

from ansible_collections.flaskfleet.stack.plugins.modules.files import ENTRY, sync_all

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


class FakeModule:
    """What Sync uses of AnsibleModule: check_mode and run_command."""

    def __init__(self, check_mode=False):
        self.check_mode = check_mode

    @staticmethod
    def run_command(argv, umask=None):
        old = os.umask(umask) if umask is not None else None
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        finally:
            if old is not None:
                os.umask(old)
        return proc.returncode, proc.stdout, proc.stderr


def entry(**given):
    base = {key: spec.get('default') for key, spec in ENTRY.items()}
    base.update(owner=OWNER, group=GROUP)
    base.update(given)
    return base


def run(entries, check_mode=False, check=None):
    """One call of the module: the Sync and its error message or None."""
    return sync_all(FakeModule(check_mode), entries, check)


def read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize('before, wanted_mode, changed', [
    (None, '0640', True),              # a new file
    (('same\n', 0o640), '0640', False),  # unchanged: nothing written
    (('same\n', 0o644), '0640', True),   # the mode alone differs
    (('old\n', 0o640), '0640', True),    # the content differs
])
def test_a_file_is_written_only_when_it_differs(tmp_path, before, wanted_mode, changed):
    path = tmp_path / 'a.conf'
    if before:
        path.write_text(before[0])
        os.chmod(path, before[1])
    inode = path.stat().st_ino if before else None
    sync, error = run([entry(dest=str(path), content='same\n', mode=wanted_mode)])
    assert error is None
    assert sync.changed_paths == ([str(path)] if changed else [])
    # created: only a file that was not there before the call
    assert sync.created_paths == ([str(path)] if changed and not before else [])
    assert read(path) == 'same\n' and mode(path) == 0o640
    if before and not changed:
        assert path.stat().st_ino == inode  # not even rewritten


def test_a_file_that_fails_its_check_never_replaces_the_one_in_place(tmp_path):
    path = tmp_path / 'a.conf'
    path.write_text('good\n')
    sync, error = run([entry(dest=str(path), content='bad\n', mode='0644', validate='grep -q good %s')])
    assert error and 'its check (grep -q good %s) failed' in error
    assert read(path) == 'good\n'
    assert os.listdir(tmp_path) == ['a.conf']  # no temporary file left
    assert sync.changed_paths == []


def test_a_failing_check_of_the_whole_set_puts_everything_back(tmp_path):
    kept, new, link = tmp_path / 'kept.conf', tmp_path / 'new.conf', tmp_path / 'enabled.conf'
    kept.write_text('before\n')
    os.chmod(kept, 0o600)
    os.utime(kept, ns=(1_000_000_000_000_000_000, 1_000_000_000_123_456_789))
    existing = tmp_path / 'existing'
    existing.mkdir(mode=0o700)
    entries = [entry(dest=str(kept), content='after\n', mode='0644'),
               entry(dest=str(existing), state='directory', mode='0755'),
               entry(dest=str(tmp_path / 'sub'), state='directory', mode='0755'),
               entry(dest=str(new), content='new\n', mode='0644'),
               entry(dest=str(link), state='link', target=str(new))]
    _sync, error = run(entries, check=f'grep -q before {kept}')
    assert error is not None
    assert read(kept) == 'before\n' and mode(kept) == 0o600
    assert os.stat(kept).st_mtime_ns == 1_000_000_000_123_456_789  # its time too: as if never touched
    assert mode(existing) == 0o700  # a directory's mode is put back too
    assert sorted(os.listdir(tmp_path)) == ['existing', 'kept.conf']
    # and a passing check keeps the new set
    sync, error = run(entries, check=f'grep -q after {kept}')
    assert error is None and len(sync.changed_paths) == 5
    assert mode(existing) == 0o755
    assert os.readlink(link) == str(new) and read(kept) == 'after\n'


@pytest.mark.parametrize('existing, links_only, removed', [
    ('link', True, True),
    ('file', True, False),   # a regular file is the user's: left alone
    ('file', False, True),
    (None, False, False),
])
def test_absent(tmp_path, existing, links_only, removed):
    path = tmp_path / 'default'
    if existing == 'link':
        path.symlink_to(tmp_path)
    elif existing == 'file':
        path.write_text('mine\n')
    sync, error = run([entry(dest=str(path), state='absent', links_only=links_only)])
    assert error is None
    assert sync.changed_paths == ([str(path)] if removed else [])
    assert os.path.lexists(path) == (existing is not None and not removed)


def test_a_link_is_made_or_pointed_anew_but_never_replaces_a_file(tmp_path):
    path = tmp_path / 'site.conf'
    sync = run([entry(dest=str(path), state='link', target='/a')])[0]
    assert sync.changed_paths == [str(path)] and os.readlink(path) == '/a'
    sync = run([entry(dest=str(path), state='link', target='/a')])[0]
    assert sync.changed_paths == []
    sync = run([entry(dest=str(path), state='link', target='/b')])[0]
    assert os.readlink(path) == '/b'
    other = tmp_path / 'file.conf'
    other.write_text('x')
    _sync, error = run([entry(dest=str(other), state='link', target='/a')])
    assert error.endswith('exists and is not a link') and read(other) == 'x'


def test_check_mode_reports_and_writes_nothing(tmp_path):
    path, directory = tmp_path / 'a.conf', tmp_path / 'd'
    path.write_text('old\n')
    sync, error = run([entry(dest=str(directory), state='directory', mode='0750'),
                       entry(dest=str(directory / 'b.conf'), content='b\n', mode='0644'),
                       entry(dest=str(path), content='new\n', mode='0644')], check_mode=True, check='false')
    assert error is None
    assert len(sync.changed_paths) == 3
    assert read(path) == 'old\n' and not directory.exists()


@pytest.mark.parametrize('bad, message', [
    (entry(dest='/tmp/x', content='x'), 'a file needs a mode'),
    (entry(dest='/tmp/x', content='x', mode='rw'), "mode 'rw' is not octal"),
    (entry(dest='/tmp/x', mode='0644'), 'a file needs its content'),
    (entry(dest='/tmp/x', content='x', mode='0644', owner='no-such-user-here'), 'no such user or group'),
    (entry(dest='/tmp/x', state='link'), 'a link needs its target'),
])
def test_bad_entries_are_refused_with_a_reason(bad, message):
    _sync, error = run([bad])
    assert error is not None and message in error


@pytest.mark.parametrize("live, earlier_stage, staged, left_stage", [
    # nothing live yet, or live and different: the new content waits beside it
    (None, None, True, "new\n"),
    ("old\n", None, True, "new\n"),
    # an earlier run's stage of the same content: still owed, written again as it is
    ("old\n", "new\n", True, "new\n"),
    # live already as wanted: no stage, and an obsolete earlier one is removed
    ("new\n", None, False, None),
    ("new\n", "other\n", False, None),
])
def test_a_staged_file_waits_beside_the_live_one(tmp_path, live, earlier_stage, staged, left_stage):
    dest = tmp_path / "app.env"
    if live is not None:
        dest.write_text(live)
        dest.chmod(0o640)
    if earlier_stage is not None:
        (tmp_path / "app.env.staged").write_text(earlier_stage)
    sync, error = sync_all(FakeModule(), [entry(dest=str(dest), content="new\n", mode="0640", stage=True)])
    assert error is None
    assert (sync.staged_paths == [str(dest)]) is staged
    assert (sync.changed_paths == [str(dest)]) is staged
    assert (dest.read_text() if dest.exists() else None) == live
    stage = tmp_path / "app.env.staged"
    assert (stage.read_text() if stage.exists() else None) == left_stage
    if left_stage is not None:
        assert stat.S_IMODE(stage.stat().st_mode) == 0o640


def test_a_staged_file_that_fails_its_check_is_not_staged(tmp_path):
    dest = tmp_path / "gunicorn.conf.py"
    dest.write_text("ok = 1\n")
    dest.chmod(0o640)
    bad = entry(dest=str(dest), content="not python(\n", mode="0640", stage=True, validate="python3 -m py_compile %s")
    sync, error = sync_all(FakeModule(), [bad])
    assert error and "its check" in error
    assert dest.read_text() == "ok = 1\n"
    assert not (tmp_path / "gunicorn.conf.py.staged").exists()
    assert not sync.staged_paths


def test_a_file_written_in_place_removes_an_earlier_stage(tmp_path):
    dest = tmp_path / "app.env"
    dest.write_text("old\n")
    (tmp_path / "app.env.staged").write_text("staged by an earlier run\n")
    sync, error = sync_all(FakeModule(), [entry(dest=str(dest), content="new\n", mode="0640")])
    assert error is None and sync.changed_paths == [str(dest)]
    assert dest.read_text() == "new\n"
    assert not (tmp_path / "app.env.staged").exists()


def test_a_directory_and_its_missing_parents_get_their_modes_whatever_the_umask(tmp_path):
    # a login's umask of 077 (the module inherits it) must not leave the parents root's only
    path = tmp_path / 'opt' / 'flaskfleet' / 'bin'
    old = os.umask(0o077)
    try:
        sync, error = run([entry(dest=str(path), state='directory', mode='0750')])
    finally:
        os.umask(old)
    assert error is None and sync.changed_paths == [str(path)]
    assert (mode(path), mode(path.parent), mode(path.parent.parent)) == (0o750, 0o755, 0o755)


def test_a_check_makes_its_files_as_a_service_would_whatever_the_umask(tmp_path):
    # nginx -t creates the log files of a new site: under a login's 077 they must not be root's only
    conf, made = tmp_path / 'site.conf', tmp_path / 'app.json.log'
    old = os.umask(0o077)
    try:
        _sync, error = run([entry(dest=str(conf), content='x\n', mode='0644')], check=f'touch {made}')
    finally:
        os.umask(old)
    assert error is None
    assert mode(made) == 0o644


@pytest.mark.parametrize('kind', ['file', 'directory', 'link', 'dangling link'])
def test_created_paths_names_what_was_not_there_before_the_call(tmp_path, kind):
    """A new file, directory or link is created; one that was there (a dangling link too) and changed is not."""
    new, old = tmp_path / 'new', tmp_path / 'old'
    if kind == 'file':
        old.write_text('before\n')
        entries = [entry(dest=str(path), content='after\n', mode='0644') for path in (new, old)]
    elif kind == 'directory':
        old.mkdir(mode=0o700)
        entries = [entry(dest=str(path), state='directory', mode='0750') for path in (new, old)]
    else:
        os.symlink('/nowhere' if kind == 'dangling link' else str(tmp_path), old)
        entries = [entry(dest=str(path), state='link', target='/elsewhere') for path in (new, old)]
    sync, error = run(entries)
    assert error is None
    assert sync.changed_paths == [str(new), str(old)]
    assert sync.created_paths == [str(new)]


def tar_of(members):
    """A tar (bytes) of (name, kind, data or link target, mode) members, as GNU tar packs a tree: './' first."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data, member_mode in members:
            info = tarfile.TarInfo(name)
            info.mode = member_mode
            if kind == 'dir':
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind in ('sym', 'hard'):
                info.type = tarfile.SYMTYPE if kind == 'sym' else tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == 'fifo':
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TREE = [('./', 'dir', None, 0o755), ('./app', 'dir', None, 0o755), ('./app/__init__.py', 'file', b'x = 1\n', 0o644),
        ('./run.sh', 'file', b'#!/bin/sh\n', 0o755), ('./app/alias.py', 'sym', '__init__.py', 0o777),
        ('./same.py', 'hard', './app/__init__.py', 0o644)]


def tree_entry(dest, members=None, **given):
    return entry(dest=str(dest), state='tree', mode='0750', archive=base64.b64encode(tar_of(members or TREE)).decode(), **given)


def test_a_tree_is_unpacked_whole_with_its_owner_then_left_as_it_is(tmp_path):
    dest = tmp_path / 'src'
    (tmp_path / 'src.unpacking').mkdir()  # what an interrupted call left
    (tmp_path / 'src.unpacking' / 'stale').write_text('old\n')
    sync, error = run([tree_entry(dest)])
    assert error is None and sync.changed_paths == [str(dest)] and sync.created_paths == [str(dest)]
    assert sorted(os.listdir(tmp_path)) == ['src']  # no work directory left, the stale one gone
    assert sorted(os.listdir(dest)) == ['app', 'run.sh', 'same.py']
    assert read(dest / 'app' / '__init__.py') == 'x = 1\n' and read(dest / 'same.py') == 'x = 1\n'
    assert os.readlink(dest / 'app' / 'alias.py') == '__init__.py'
    assert mode(dest) == 0o750 and mode(dest / 'run.sh') == 0o755 and mode(dest / 'app' / '__init__.py') == 0o644
    # the members keep the tar's time (0 here), the directory has the unpack's: contents sort by age
    assert os.stat(dest / 'run.sh').st_mtime == 0 and abs(os.stat(dest).st_mtime - time.time()) < 60
    for top, dirs, files in os.walk(dest):
        for name in [top] + [os.path.join(top, item) for item in dirs + files]:
            info = os.lstat(name)
            assert (pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name) == (OWNER, GROUP), name
    # named by its content: a directory there is the tree, whatever the archive says now
    sync, error = run([tree_entry(dest, TREE[:2])])
    assert error is None and sync.changed_paths == [] and os.path.exists(dest / 'run.sh')


@pytest.mark.parametrize('member, problem', [
    (('/etc/cron.d/x', 'file', b'x', 0o644), '/etc/cron.d/x, a name that leads out of the tree'),
    (('./../x', 'file', b'x', 0o644), './../x, a name that leads out of the tree'),
    (('./a/../../x', 'file', b'x', 0o644), './a/../../x, a name that leads out of the tree'),
    (('./out', 'sym', '../../etc/passwd', 0o777), './out, a link to ../../etc/passwd outside the tree'),
    (('./abs', 'sym', '/etc/passwd', 0o777), './abs, a link to /etc/passwd outside the tree'),
    (('./hard', 'hard', '../x', 0o644), './hard, a link to ../x outside the tree'),
    (('./pipe', 'fifo', None, 0o644), './pipe, which is not a file, directory or link'),
    (('./app/alias.py/x', 'file', b'x', 0o644), './app/alias.py/x, a name under a link'),
    (('./twin', 'hard', './app', 0o644), './twin, a hard link to ./app, not a file of the tar'),
])
def test_a_tree_whose_tar_leads_out_of_it_is_refused_and_nothing_is_left(tmp_path, member, problem):
    dest = tmp_path / 'src'
    sync, error = run([tree_entry(dest, TREE + [member])])
    assert error == f'{dest}: the tar holds {problem}'
    assert os.listdir(tmp_path) == [] and sync.changed_paths == []


def test_a_tree_whose_links_lead_out_together_is_refused(tmp_path):
    # each target stays inside as written; resolved one through the other, ./b is the tree's parent
    dest = tmp_path / 'src'
    _sync, error = run([tree_entry(dest, TREE + [('./a', 'sym', '.', 0o777), ('./b', 'sym', 'a/..', 0o777)])])
    # (the interpreter's data filter, where it has one, says it first, in its words)
    assert error in (f'{dest}: the tar holds ./b, a link to a/.. outside the tree',
                     f"{dest}: the tar leads out of the tree: './b' would link to '{tmp_path}', which is outside the destination")
    assert os.listdir(tmp_path) == []


def test_a_tree_in_check_mode_a_file_in_its_place_and_a_failing_set_check(tmp_path):
    dest = tmp_path / 'src'
    sync, error = run([tree_entry(dest)], check_mode=True)
    assert error is None and sync.changed_paths == [str(dest)] and os.listdir(tmp_path) == []
    dest.write_text('not a directory\n')
    _sync, error = run([tree_entry(dest)])
    assert error == f'{dest}: exists and is not a directory'
    dest.unlink()
    # missing parents are made (0755)
    sync, error = run([tree_entry(tmp_path / 'missing' / 'src')])
    assert error is None and os.path.isfile(tmp_path / 'missing' / 'src' / 'run.sh') and mode(tmp_path / 'missing') == 0o755
    shutil.rmtree(tmp_path / 'missing')
    # the set's check fails: the tree this call unpacked goes, whole
    _sync, error = run([tree_entry(dest)], check='false')
    assert error is not None and os.listdir(tmp_path) == []
    # from a file on the host (the action plugin transfers a large tar), not a readable tar
    archive = tmp_path / 'tree.tar'
    archive.write_bytes(tar_of(TREE))
    sync, error = run([entry(dest=str(dest), state='tree', mode='0755', archive_path=str(archive))])
    assert error is None and read(dest / 'run.sh') == '#!/bin/sh\n'
    _sync, error = run([entry(dest=str(tmp_path / 'other'), state='tree', mode='0755', archive=base64.b64encode(b'no tar').decode())])
    assert error.startswith(f"{tmp_path / 'other'}: the tar cannot be read") and not (tmp_path / 'other.unpacking').exists()
