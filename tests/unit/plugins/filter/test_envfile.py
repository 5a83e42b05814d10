# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the flaskfleet.stack.systemd_env_file and systemd_env_problems filters.

Every rendered file is also read back: by the flaskfleet-envexec helper's
parser, by the helper itself in a subprocess (the child's environment is
compared byte for byte), and, where libsystemd-shared is installed, by
systemd's own load_env_file().
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ansible.errors import AnsibleFilterError
from ansible.parsing.vault import EncryptedString, VaultLib, VaultSecret, VaultSecretsContext
from ansible_collections.flaskfleet.stack.plugins.filter.envfile import FilterModule

FILTERS = FilterModule().filters()
ENV_FILE = FILTERS['systemd_env_file']
PROBLEMS = FILTERS['systemd_env_problems']
FILE_FQCN = 'flaskfleet.stack.systemd_env_file'
PROBLEMS_FQCN = 'flaskfleet.stack.systemd_env_problems'

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from envfile_support import ENVEXEC, envexec, systemd_parser  # noqa: E402  pylint: disable=wrong-import-position

LIMIT = 131071  # bytes of NAME=value: execve's MAX_ARG_STRLEN (131072) minus the NUL
SECRET = 'hunter2-SECRET'


SYSTEMD_LOAD = (systemd_parser() or (None, None))[1]
needs_systemd = pytest.mark.skipif(SYSTEMD_LOAD is None, reason='libsystemd-shared is not installed')


@pytest.mark.parametrize('env, text', [
    ({}, ''),
    ({'B': 'b', 'A': 'a'}, 'A="a"\nB="b"\n'),
    ({'a': '1', 'B': '2', '_x': '3', 'A_1': '4'}, 'A_1="4"\nB="2"\n_x="3"\na="1"\n'),
    ({'A': 'say "hi"'}, 'A="say \\"hi\\""\n'),
    ({'A': 'back\\slash'}, 'A="back\\\\slash"\n'),
    ({'A': '`id` $(id) $HOME ${X}'}, 'A="\\`id\\` \\$(id) \\$HOME \\${X}"\n'),
    ({'A': "it's #1; 100%"}, 'A="it\'s #1; 100%"\n'),
    ({'A': 'two\nlines'}, 'A="two\nlines"\n'),
    ({'A': 'crlf\r\nend'}, 'A="crlf\r\nend"\n'),
    ({'A': '\ttab \x1b[0m \x7f'}, 'A="\ttab \x1b[0m \x7f"\n'),
    ({'A': 'Grüße – 東京 ✓'}, 'A="Grüße – 東京 ✓"\n'),
    ({'A': ''}, 'A=""\n'),
    ({'N': 5, 'F': 1.5, 'T': True, 'Z': False, 'O': 0}, 'F="1.5"\nN="5"\nO="0"\nT="True"\nZ="False"\n'),
    ({'A': 'x' * (LIMIT - 2)}, 'A="' + 'x' * (LIMIT - 2) + '"\n'),
], ids=['empty', 'sorted', 'ascii-order', 'quote', 'backslash', 'shell', 'literal-punctuation', 'newline', 'crlf',
        'controls', 'unicode', 'empty-value', 'scalars', 'longest'])
def test_renders(env, text):
    assert ENV_FILE(env) == text
    assert PROBLEMS(env) == []


def test_renders_a_vaulted_value_decrypted(monkeypatch):
    secrets = [('default', VaultSecret(b'test-password'))]
    monkeypatch.setattr(VaultSecretsContext, '_current', VaultSecretsContext(secrets))
    vaulted = EncryptedString(ciphertext=VaultLib(secrets).encrypt('s3cr$t').decode())
    assert ENV_FILE({'SECRET_KEY': vaulted}) == 'SECRET_KEY="s3cr\\$t"\n'


@pytest.mark.parametrize('name, value, reason', [
    ('bad-name', 'v', 'not a valid variable name'),
    ('1ABC', 'v', 'not a valid variable name'),
    ('export A', 'v', 'not a valid variable name'),
    ('', 'v', 'not a valid variable name'),
    ('Ä', 'v', 'not a valid variable name'),
    ('A\n', 'v', 'not a valid variable name'),
    (5, 'v', 'not a valid variable name'),
    ('A', None, 'is null'),
    ('A', {'k': SECRET}, 'is a mapping'),
    ('A', [SECRET], 'is a list'),
    ('A', (SECRET,), 'is a list'),
    ('A', SECRET.encode(), 'unsupported type bytes'),
    ('A', object(), 'unsupported type object'),
    ('A', EncryptedString(ciphertext='$ANSIBLE_VAULT;1.1;AES256\n6162\n'), 'cannot be converted to a string'),
    ('A', SECRET + '\0', 'NUL character'),
    ('A', SECRET + '\ud800', 'lone surrogate'),
    ('A', SECRET + '\udcff', 'lone surrogate'),
    ('A', SECRET + '\ufffe', 'noncharacter'),
    ('A', SECRET + '\uffff', 'noncharacter'),
    ('A', SECRET + '\ufdd0', 'noncharacter'),
    ('A', SECRET + '\U0010ffff', 'noncharacter'),
    ('A', 'x' * (LIMIT - 1), 'too long'),
    ('A', 'é' * ((LIMIT - 1) // 2), 'too long'),
], ids=['dash', 'digit-first', 'export', 'empty-name', 'non-ascii-name', 'trailing-newline-name', 'int-name',
        'none', 'mapping', 'list', 'tuple', 'bytes', 'object', 'undecryptable', 'nul', 'surrogate', 'escaped-byte',
        'fffe', 'ffff', 'fdd0', 'plane-16', 'too-long', 'too-long-in-bytes'])
def test_refuses(name, value, reason):
    env = {'GOOD': 'fine', name: value}
    with pytest.raises(AnsibleFilterError, match=reason) as error:
        ENV_FILE(env)
    message = str(error.value)
    assert message.startswith(FILE_FQCN + ': ')
    assert repr(str(name)) in message
    assert SECRET not in message and 'GOOD' not in message
    assert PROBLEMS(env) == [str(name)]


def test_refusal_lists_every_bad_variable_sorted():
    with pytest.raises(AnsibleFilterError, match=r"cannot write 3 variable\(s\): 'B' is null .*; 'C-D' is not .*; 'Z' contains") as error:
        ENV_FILE({'Z': SECRET + '\0', 'A': 'ok', 'B': None, 'C-D': SECRET})
    assert SECRET not in str(error.value)


@pytest.mark.parametrize('env, names', [
    ({}, []),
    ({'A': 'ok', 'B': 1, 'C': True}, []),
    ({'Z': None, 'A': '\0', 'ok': 'x', 'bad name': 'x', 7: 'x'}, ['7', 'A', 'Z', 'bad name']),
], ids=['empty', 'all-good', 'mixed'])
def test_problems(env, names):
    assert PROBLEMS(env) == names


@pytest.mark.parametrize('flt, fqcn', [(ENV_FILE, FILE_FQCN), (PROBLEMS, PROBLEMS_FQCN)], ids=['file', 'problems'])
@pytest.mark.parametrize('env', [None, 'A=1', ['A', '1'], [('A', '1')]], ids=['none', 'str', 'list', 'pairs'])
def test_input_must_be_a_mapping(flt, fqcn, env):
    with pytest.raises(AnsibleFilterError, match=f'^{fqcn}: input must be a mapping'):
        flt(env)


# Values that are easy to get wrong, each read back unchanged.
HARD_VALUES = {
    'SHELLISH': '` $( ) " \' \\ % ; # ',
    'NEWLINE': 'first\nsecond',
    'NEWLINES_ONLY': '\n\n',
    'UNICODE': 'Grüße – 東京 ✓',
    'TRAILING_BACKSLASH': 'ends with \\',
    'BACKSLASH_NEWLINE': 'a\\\nb',
    'TRAILING_SPACES': 'spaces   ',
    'LEADING_SPACES': '   spaces',
    'ONLY_SPACES': '   ',
    'HOME': '$HOME',
    'BRACED': '${X}',
    'BACKSLASH_N': '\\n',
    'EMPTY': '',
    'QUOTE': '"',
    'SINGLE_QUOTE': "'",
    'ESCAPED_QUOTE': '\\"',
    'CRLF': 'a\r\nb\r',
    'CONTROLS': '\x01\x08\t\x0b\x0c\x1b\x7f\x85\u2028',
    'COMMENTISH': '# not a comment',
    'ASSIGNMENT': 'OTHER=1',
    'EXPORT': 'export X=1',
    'ASTRAL': '\U0001f600 \U000e0001',
    'INT': 42,
    'NEGATIVE': -7,
    'FLOAT': 0.1,
    'TRUE': True,
    'FALSE': False,
}
EXPECTED = {name: str(value) for name, value in HARD_VALUES.items()}


@pytest.mark.parametrize('name', sorted(HARD_VALUES))
def test_round_trip(name):
    env = {name: HARD_VALUES[name]}
    assert envexec.parse(ENV_FILE(env)) == {name: EXPECTED[name]}


def test_round_trip_all_in_one_file():
    parsed = envexec.parse(ENV_FILE(HARD_VALUES))
    assert parsed == EXPECTED
    assert list(parsed) == sorted(EXPECTED)


def test_round_trip_longest_value():
    value = 'é' * ((LIMIT - 2) // 2) + '\\'
    assert envexec.parse(ENV_FILE({'A': value})) == {'A': value}


@needs_systemd
def test_systemd_reads_back_every_value(tmp_path):
    path = tmp_path / 'app.env'
    path.write_text(ENV_FILE(HARD_VALUES), encoding='utf-8', newline='')
    expected = {name.encode(): value.encode('utf-8') for name, value in EXPECTED.items()}
    assert SYSTEMD_LOAD(path) == expected


DUMP_ENVIRON = 'import json, os; print(json.dumps({k.hex(): v.hex() for k, v in os.environb.items()}))'


def test_helper_passes_every_value_byte_for_byte(tmp_path):
    path = tmp_path / 'app.env'
    path.write_text(ENV_FILE(HARD_VALUES), encoding='utf-8', newline='')
    base = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LC_ALL': 'C.UTF-8', 'INT': 'inherited, overridden'}
    run = subprocess.run([sys.executable, str(ENVEXEC), '--env-file', str(path), '--', sys.executable, '-c', DUMP_ENVIRON],
                         env=base, capture_output=True, check=True)
    child = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(run.stdout).items()}
    expected = {name.encode(): value.encode() for name, value in base.items()}
    expected.update((name.encode(), value.encode('utf-8')) for name, value in EXPECTED.items())
    assert child == expected
    assert run.stderr == b''
