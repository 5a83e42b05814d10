# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for roles/supervise/files/flaskfleet-envexec.

The grammar cases start with systemd's own (src/test/test-env-file.c, v257).
Where libsystemd-shared is installed, every case and a few thousand random
files are also read by systemd's own load_env_file() and must agree. The
helper itself runs in subprocesses with the interpreter running the tests, so
`make unit` covers both supported Pythons.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import resource
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from envfile_support import ENVEXEC, envexec, systemd_parser  # noqa: E402  pylint: disable=wrong-import-position

SYSTEMD = systemd_parser()
needs_systemd = pytest.mark.skipif(SYSTEMD is None, reason='libsystemd-shared is not installed')

# systemd's test-env-file.c (v257): name -> (file, expected variables).
SYSTEMD_CASES = {
    'env_file_1': ('a=a\na=b\na=b\na=a\nb=b\\\nc\nd= d\\\ne  \\\nf  \ng=g\\ \nh= ąęół\\ śćńźżμ \ni=i\\',
                   {'a': 'a', 'b': 'bc', 'd': 'de  f', 'g': 'g ', 'h': 'ąęół śćńźżμ', 'i': 'i'}),
    'env_file_2': ('a=a\\\n', {'a': 'a'}),
    'env_file_3': ('#SPAMD_ARGS="-d --socketpath=/var/lib/bulwark/spamd \\\n'
                   '#--nouser-config                                     \\\n'
                   'normal1=line\\\n'
                   '111\n'
                   ';normal=ignored                                      \\\n'
                   'normal2=line222\n'
                   'normal ignored                                       \\\n',
                   {'normal1': 'line111', 'normal2': 'line222'}),
    'env_file_4': ('# Generated\n\nHWMON_MODULES="coretemp f71882fg"\n\n# For compatibility reasons\n\n'
                   'MODULE_0=coretemp\nMODULE_1=f71882fg',
                   {'HWMON_MODULES': 'coretemp f71882fg', 'MODULE_0': 'coretemp', 'MODULE_1': 'f71882fg'}),
    'env_file_5': ('a=\nb=', {'a': '', 'b': ''}),
    'env_file_6': ("a=\\ \\n \\t \\x \\y \\' \n"
                   "b= \\$'                  \n"
                   "c= ' \\n\\t\\$\\`\\\\\n'   \n"
                   'd= " \\n\\t\\$\\`\\\\\n"   \n',
                   {'a': " n t x y '", 'b': "$'", 'c': ' \\n\\t\\$\\`\\\\\n', 'd': ' \\n\\t$`\\\n'}),
}

GRAMMAR_CASES = {
    # Comments, blank lines, whitespace.
    'comments': ('# one\n; two\n\n   # indented\nA=1', {'A': '1'}),
    'hash-mid-line-is-literal': ('A=1 # not a comment', {'A': '1 # not a comment'}),
    'leading-whitespace': ('   A=1\n\tB=2', {'A': '1', 'B': '2'}),
    'whitespace-around-equals': ('A \t= \t1 \t\n', {'A': '1'}),
    'crlf-lines': ('A=1\r\nB="2"\r\n', {'A': '1', 'B': '2'}),
    'cr-ends-a-bare-value': ('A=a\rB=b', {'A': 'a', 'B': 'b'}),
    'comment-backslash-ends-since-v254': ('# comment \\\nA=1', {'A': '1'}),
    # Names.
    'export-is-not-special': ('export A=1\nB=2', {'B': '2'}),
    'key-without-equals-dropped': ('A\nB=2\nC', {'B': '2'}),
    'invalid-names-dropped': ('1A=1\nA-B=2\nÄ=3\n=4\n==5\nA B=6\nOK=7', {'OK': '7'}),
    'byte-order-mark-spoils-first-name': ('\ufeffA=1\nB=2', {'B': '2'}),
    'later-wins-first-position': ('A=1\nB=2\nA=3', {'A': '3', 'B': '2'}),
    # Bare values.
    'bare-escapes': ('A=a\\ b\\"c\\\\d\\$e', {'A': 'a b"c\\d$e'}),
    'bare-continuation': ('A=a\\\nb', {'A': 'ab'}),
    'bare-trailing-whitespace-chomped': ('A=a  b \t \nB=x', {'A': 'a  b', 'B': 'x'}),
    'bare-escaped-trailing-space-kept': ('A=a\\  \n', {'A': 'a '}),
    'bare-quotes-are-literal': ('A=a"b\'c', {'A': 'a"b\'c'}),
    'value-with-equals': ('A=b=c', {'A': 'b=c'}),
    'no-expansion': ('A=$HOME ${X} `id`', {'A': '$HOME ${X} `id`'}),
    # Double quotes.
    'double-quote-escapes': ('A="a\\"b\\\\c\\`d\\$e\\nf\\\'g"', {'A': 'a"b\\c`d$e\\nf\\\'g'}),
    'double-quote-continuation': ('A="a\\\nb"', {'A': 'ab'}),
    'double-quote-newline-kept': ('A="a\nb"\nB=1', {'A': 'a\nb', 'B': '1'}),
    'double-quote-cr-kept': ('A="a\r\nb\r"', {'A': 'a\r\nb\r'}),
    'double-quote-backslash-cr-kept': ('A="a\\\rb"', {'A': 'a\\\rb'}),
    'double-quote-whitespace-kept': ('A="  a  "  \n', {'A': '  a  '}),
    'double-quote-hash': ('A="# x ; y"', {'A': '# x ; y'}),
    # Single quotes.
    'single-quote-literal': ("A='a\\b\"$c\nd'", {'A': 'a\\b"$c\nd'}),
    'single-quote-whitespace-kept': ("A='  a  '  ", {'A': '  a  '}),
    # Concatenation, empty and unterminated values.
    'concatenation': ('A="a" \'b\' c\\ d', {'A': 'abc d'}),
    'empty-values': ('A=\nB=""\nC=\'\'\nD=   ', {'A': '', 'B': '', 'C': '', 'D': ''}),
    'unterminated-double-quote': ('A="abc', {'A': 'abc'}),
    'unterminated-single-quote': ("A='abc\n", {'A': 'abc\n'}),
    'dangling-escape-at-eof': ('A=x\\', {'A': 'x'}),
    # Invalid UTF-8 (undecodable bytes decode to surrogates) where systemd does not check it.
    'bad-utf8-in-comment-ignored': ('# \udcff\nA=1', {'A': '1'}),
    'bad-utf8-in-dropped-key-ignored': ('\udcff\nA=1', {'A': '1'}),
}


@pytest.mark.parametrize('text, expected', list({**SYSTEMD_CASES, **GRAMMAR_CASES}.values()),
                         ids=list({**SYSTEMD_CASES, **GRAMMAR_CASES}))
def test_parse(text, expected):
    parsed = envexec.parse(text)
    assert parsed == expected
    assert list(parsed) == list(expected)


@pytest.mark.parametrize('text, expected', [
    ('# comment \\\nA=1\nB=2', {'B': '2'}),
    (SYSTEMD_CASES['env_file_3'][0], {}),
    ('; comment \\\\\nA=1', {'A': '1'}),
], ids=['continued', 'env_file_3', 'escaped-backslash'])
def test_parse_comment_continuation_before_v254(text, expected):
    assert envexec.parse(text, comment_continuation=True) == expected


def test_parse_reports_ignored_names():
    ignored = []
    assert envexec.parse('A=1\nexport B=2\n\nbad-name=3\n', ignored=ignored) == {'A': '1'}
    assert ignored == [(2, 'export B'), (4, 'bad-name')]


@pytest.mark.parametrize('text, line, reason', [
    ('A=1\nB=x\udcffy', 2, 'invalid UTF-8 in the value of B'),
    ('A="\ufffe"', 1, 'invalid UTF-8 in the value of A'),
    ('A=\ufdd0', 1, 'invalid UTF-8 in the value of A'),
    ('A=\U0010ffff', 1, 'invalid UTF-8 in the value of A'),
    ('A=1\n\n\udcff=1', 3, 'invalid UTF-8 in a variable name'),
    ('bad\ufffe name=1', 1, 'invalid UTF-8 in a variable name'),
    ('A=1\nB=2\0', 2, 'NUL byte'),
    ('# \0', 1, 'NUL byte'),
], ids=['undecodable-byte', 'fffe', 'fdd0', 'plane-16', 'key', 'invalid-name-still-checked', 'nul', 'nul-in-comment'])
def test_parse_refuses_what_systemd_refuses(text, line, reason):
    with pytest.raises(envexec.EnvFileError, match=reason) as error:
        envexec.parse(text)
    assert error.value.line == line


@needs_systemd
@pytest.mark.parametrize('text', [case[0] for case in {**SYSTEMD_CASES, **GRAMMAR_CASES}.values()]
                         + ['A=1\nB=x\udcffy', 'A="\ufffe"', 'A=1\nB=2\0', 'bad\ufffe name=1'],
                         ids=list({**SYSTEMD_CASES, **GRAMMAR_CASES}) + ['bad-value', 'nonchar', 'nul', 'bad-key'])
def test_parse_agrees_with_systemd(tmp_path, text):
    version, load = SYSTEMD
    data = text.encode('utf-8', 'surrogateescape')
    (tmp_path / 'env').write_bytes(data)
    assert _ours(data, version) == load(tmp_path / 'env')


def _ours(data: bytes, version: int) -> dict | None:
    """parse() shaped like the systemd loader's result."""
    try:
        parsed = envexec.parse(data.decode('utf-8', 'surrogateescape'), comment_continuation=version < 254)
    except envexec.EnvFileError:
        return None
    return {name.encode(): value.encode('utf-8') for name, value in parsed.items()}


@needs_systemd
def test_parse_agrees_with_systemd_on_random_files(tmp_path):
    version, load = SYSTEMD
    pieces = ['A', 'b', '_', '1', '=', '=', ' ', '\t', '\n', '\n', '\r', '#', ';', '\\', '\\', '"', '"', "'", "'",
              '$', '`', 'é', '\ufffe', 'export ']
    rng = random.Random(20240229)
    path = tmp_path / 'env'
    for _file in range(1500):
        data = ''.join(rng.choice(pieces) for _piece in range(rng.randint(0, 40))).encode('utf-8')
        data += rng.choice([b'', b'', b'', b'\xff', b'\0'])
        path.write_bytes(data)
        assert _ours(data, version) == load(path), data


# The helper, run as a program.

DUMP = ('import json, os, resource; print(json.dumps({"env": {k.hex(): v.hex() for k, v in os.environb.items()}, '
        '"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)}))')
BASE_ENV = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LC_ALL': 'C.UTF-8', 'INHERITED': 'kept', 'SHARED': 'inherited'}


def _run(args, env=None, preexec_fn=None):
    """Run the helper with the tests' interpreter; return the CompletedProcess (bytes)."""
    return subprocess.run([sys.executable, str(ENVEXEC), *args], env=BASE_ENV if env is None else env,
                          capture_output=True, preexec_fn=preexec_fn, check=False, timeout=60)


def _child(args, preexec_fn=None):
    """Run the helper in front of DUMP; return (environment as bytes, (soft, hard), stderr)."""
    run = _run([*args, '--', sys.executable, '-c', DUMP], preexec_fn=preexec_fn)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    return {bytes.fromhex(k): bytes.fromhex(v) for k, v in out['env'].items()}, tuple(out['nofile']), run.stderr.decode()


def _expected_env(**variables: bytes) -> dict:
    """BASE_ENV as bytes, updated with variables."""
    env = {k.encode(): v.encode() for k, v in BASE_ENV.items()}
    env.update((k.encode(), v) for k, v in variables.items())
    return env


def test_helper_is_an_executable_python3_script():
    assert ENVEXEC.read_text(encoding='utf-8').startswith('#!/usr/bin/python3\n')
    assert ENVEXEC.stat().st_mode & stat.S_IXUSR


def test_helper_sets_variables_byte_for_byte(tmp_path):
    env_file = tmp_path / 'app.env'
    env_file.write_bytes('# settings\nSHARED="from file"\nMULTI="one\ntwo\r\n"\nQUOTED="a \\"b\\" \\\\ \\$X \\`c\\`"\n'
                         "RAW='$HOME \\n'\nBARE=  Grüße – 東京 ✓  \nEMPTY=\nexport IGNORED=1\n".encode('utf-8'))
    env, _nofile, stderr = _child(['--env-file', str(env_file)])
    assert env == _expected_env(SHARED=b'from file', MULTI=b'one\ntwo\r\n', QUOTED=b'a "b" \\ $X `c`',
                                RAW=b'$HOME \\n', BARE='Grüße – 東京 ✓'.encode('utf-8'), EMPTY=b'')
    assert 'export IGNORED' in stderr and 'invalid name' in stderr


def test_helper_later_files_override(tmp_path):
    first, second = tmp_path / 'first.env', tmp_path / 'second.env'
    first.write_text('A=first\nB=first\nSHARED=first\n', encoding='utf-8')
    second.write_text('B=second\n', encoding='utf-8')
    env, _nofile, stderr = _child([f'--env-file={first}', '--env-file', str(second)])
    assert env == _expected_env(A=b'first', B=b'second', SHARED=b'first')
    assert stderr == ''


def test_helper_without_env_files_keeps_the_environment():
    env, _nofile, _stderr = _child([])
    assert env == _expected_env()


def test_helper_searches_path_and_passes_arguments():
    run = _run(['--', 'printf', '%s|', 'a b', '', '"c"'])
    assert run.returncode == 0
    assert run.stdout == b'a b||"c"|'


def _limit_nofile(soft: int, hard: int):
    """A preexec_fn that sets the helper's starting RLIMIT_NOFILE."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_helper_nofile_sets_soft_limit():
    _env, nofile, stderr = _child(['--nofile', '1000'], preexec_fn=_limit_nofile(256, 4096))
    assert nofile == (1000, 4096)
    assert stderr == ''


def test_helper_nofile_lowers_soft_limit():
    _env, nofile, _stderr = _child(['--nofile=300'], preexec_fn=_limit_nofile(1024, 4096))
    assert nofile == (300, 4096)


def _can_raise_hard_limits() -> bool:
    """Whether this process has CAP_SYS_RESOURCE (bit 24), which raising a hard limit needs."""
    status = pathlib.Path('/proc/self/status').read_text(encoding='ascii')
    return bool(int(re.search(r'^CapEff:\s*([0-9a-f]+)$', status, re.M).group(1), 16) >> 24 & 1)


def test_helper_nofile_raises_hard_limit_when_allowed():
    _env, nofile, stderr = _child(['--nofile', '1000'], preexec_fn=_limit_nofile(256, 512))
    if _can_raise_hard_limits():
        assert nofile == (1000, 1000)
        assert stderr == ''
    else:
        assert nofile == (512, 512)
        assert 'warning: cannot raise the open files hard limit to 1000' in stderr


NR_OPEN = int(pathlib.Path('/proc/sys/fs/nr_open').read_text(encoding='ascii'))


@pytest.mark.parametrize('limit', [NR_OPEN + 1, 2 ** 64], ids=['above-nr-open', 'overflow'])
def test_helper_nofile_falls_back_to_hard_limit(limit):
    # Above fs.nr_open not even root may raise the hard limit.
    _env, nofile, stderr = _child(['--nofile', str(limit)], preexec_fn=_limit_nofile(256, 512))
    assert nofile == (512, 512)
    assert f'warning: cannot raise the open files hard limit to {limit}' in stderr
    assert 'using the hard limit 512' in stderr


SECRET = 'hunter2-SECRET'


@pytest.mark.parametrize('content', [
    f'A=1\nB={SECRET}\udcff\n',
    f'A="{SECRET}\ufffe"\n',
    f'A={SECRET}\0\n',
], ids=['undecodable', 'noncharacter', 'nul'])
def test_helper_refuses_files_systemd_refuses(tmp_path, content):
    env_file = tmp_path / 'app.env'
    env_file.write_bytes(content.encode('utf-8', 'surrogateescape'))
    run = _run(['--env-file', str(env_file), '--', 'true'])
    assert run.returncode == 2
    assert f'{env_file}:'.encode() in run.stderr
    assert SECRET.encode() not in run.stderr


@pytest.mark.parametrize('make_path, message', [
    (lambda tmp: tmp / 'missing.env', b'No such file or directory'),
    (lambda tmp: tmp, b'Is a directory'),
], ids=['missing', 'directory'])
def test_helper_unreadable_file(tmp_path, make_path, message):
    path = make_path(tmp_path)
    run = _run(['--env-file', str(path), '--', 'true'])
    assert run.returncode == 2
    assert run.stderr.startswith(f'flaskfleet-envexec: cannot read environment file {path}: '.encode())
    assert message in run.stderr


@pytest.mark.parametrize('args, message', [
    ([], 'missing -- COMMAND'),
    (['--'], 'no COMMAND after --'),
    (['true'], "unknown argument 'true'"),
    (['--env-file'], '--env-file needs a value'),
    (['--env-file=', '--', 'true'], '--env-file needs a path'),
    (['--nofile', '--', 'true'], "--nofile needs a positive integer, got '--'"),
    (['--nofile', '0', '--', 'true'], "--nofile needs a positive integer, got '0'"),
    (['--nofile', '-5', '--', 'true'], "--nofile needs a positive integer, got '-5'"),
    (['--nofile', 'infinity', '--', 'true'], "--nofile needs a positive integer, got 'infinity'"),
    (['--verbose', '--', 'true'], "unknown argument '--verbose'"),
], ids=['nothing', 'no-command', 'no-separator', 'env-file-without-value', 'env-file-empty', 'nofile-without-value',
        'nofile-zero', 'nofile-negative', 'nofile-word', 'unknown-option'])
def test_helper_usage_errors(args, message):
    with pytest.raises(envexec.UsageError, match=re.escape(message)):
        envexec.parse_args(args)
    run = _run(args)
    assert run.returncode == 2
    assert message.encode() in run.stderr and b'usage: flaskfleet-envexec' in run.stderr


@pytest.mark.parametrize('args, expected', [
    (['--', 'cmd'], ([], None, ['cmd'])),
    (['--env-file', 'a', '--env-file=b', '--nofile=8', '--', 'cmd', '--env-file', 'c'],
     (['a', 'b'], 8, ['cmd', '--env-file', 'c'])),
    (['--nofile', '8', '--nofile', '9', '--', 'cmd', '--'], ([], 9, ['cmd', '--'])),
], ids=['command-only', 'everything', 'last-nofile-wins'])
def test_parse_args(args, expected):
    assert envexec.parse_args(args) == expected


@pytest.mark.parametrize('make_command, status', [
    (lambda tmp: ['no-such-command-flaskfleet'], 127),
    (lambda tmp: [str(tmp / 'missing')], 127),
    (lambda tmp: [str(tmp)], 126),
], ids=['not-on-path', 'missing-path', 'not-executable'])
def test_helper_cannot_execute(tmp_path, make_command, status):
    run = _run(['--', *make_command(tmp_path)])
    assert run.returncode == status
    assert run.stderr.startswith(b'flaskfleet-envexec: cannot execute ')
