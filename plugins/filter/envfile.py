# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render an application's environment file for systemd's EnvironmentFile=.

Documentation lives in the sidecar files systemd_env_file.yml and
systemd_env_problems.yml. Both filters are pure.

Every value is written in double quotes, where systemd's parser
(parse_env_file_internal() in src/basic/env-file.c, v252 to v257) keeps every
character literally except the closing quote and a backslash; a backslash
followed by one of SHELL_NEED_ESCAPE (" \\ ` $) yields that character. So
escaping exactly those four gives the value back byte for byte, newlines and
carriage returns included. roles/supervise/files/flaskfleet-envexec reads the
same file with the same grammar under supervisord.

Values are secrets: error messages name variables, never values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.parsing.vault import EncryptedString

FILE_FQCN = 'flaskfleet.stack.systemd_env_file'
PROBLEMS_FQCN = 'flaskfleet.stack.systemd_env_problems'

# env_name_is_valid() in src/basic/env-util.c: bash's rules, ASCII only.
_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
# Characters a backslash escapes inside double quotes (SHELL_NEED_ESCAPE).
_ESCAPES = str.maketrans({char: '\\' + char for char in '"\\`$'})
# unichar_is_valid() in src/basic/utf8.c refuses noncharacters; one in any
# value makes load_env_file() fail, and the unit with it.
_NONCHARACTER = re.compile(
    '[\ufdd0-\ufdef' + ''.join(f'{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}' for plane in range(17)) + ']'
)
# execve() refuses any "NAME=value" string longer than MAX_ARG_STRLEN (32
# pages of 4 KiB, 131072 bytes) including its NUL.
MAX_ASSIGNMENT_BYTES = 131071


class _EnvError(ValueError):
    """A variable that cannot be represented; the message never holds its value."""


def _show_name(name) -> str:
    """Show a (possibly invalid) name, shortened."""
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + '...'


def _text(value) -> str:
    """Return value as the string the application will see (Jinja's | string)."""
    if value is None:
        raise _EnvError('is null (use an empty string for an empty value)')
    if isinstance(value, Mapping):
        raise _EnvError('is a mapping (only strings, numbers and booleans can be environment values)')
    if isinstance(value, (list, tuple, set, frozenset)):
        raise _EnvError('is a list (only strings, numbers and booleans can be environment values)')
    if not isinstance(value, (str, EncryptedString, bool, int, float)):
        raise _EnvError(f'has the unsupported type {type(value).__name__} (use a string)')
    try:
        return str(value)
    except (AnsibleError, ReferenceError, ValueError) as e:
        # A vaulted value that cannot be decrypted (ReferenceError: no vault
        # secrets loaded at all), an int too long to print.
        raise _EnvError(f'cannot be converted to a string ({type(e).__name__})') from None


def _check(name, value) -> str:
    """Return the value's text, or raise _EnvError saying why it cannot be written."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise _EnvError('is not a valid variable name (ASCII letters, digits and _, not starting with a digit)')
    text = _text(value)
    if '\0' in text:
        raise _EnvError('contains a NUL character, which no environment variable can hold')
    try:
        size = len(f'{name}={text}'.encode('utf-8'))
    except UnicodeEncodeError:
        raise _EnvError('contains a lone surrogate, which cannot be written as UTF-8') from None
    if _NONCHARACTER.search(text):
        raise _EnvError('contains a Unicode noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF), '
                        'which systemd rejects as invalid UTF-8, refusing the whole file')
    if size > MAX_ASSIGNMENT_BYTES:
        raise _EnvError(f'is too long (NAME=value is more than {MAX_ASSIGNMENT_BYTES} bytes of UTF-8, '
                        'the most execve() passes in one variable)')
    return text


def _scan(env, fqcn: str) -> tuple[dict, dict]:
    """Split env into (name -> text) for good variables and (shown name -> reason) for bad ones."""
    if not isinstance(env, Mapping):
        raise AnsibleFilterError(f'{fqcn}: input must be a mapping of variable names to values, '
                                 f'got {type(env).__name__}')
    good, bad = {}, {}
    for name, value in env.items():
        try:
            good[name] = _check(name, value)
        except _EnvError as e:
            bad[name if isinstance(name, str) else str(name)] = str(e)
    return good, bad


def systemd_env_file(env) -> str:
    """Render env (name -> value) as an EnvironmentFile=, one NAME="value" line per variable, sorted."""
    good, bad = _scan(env, FILE_FQCN)
    if bad:
        details = '; '.join(f'{_show_name(name)} {reason}' for name, reason in sorted(bad.items()))
        raise AnsibleFilterError(f'{FILE_FQCN}: cannot write {len(bad)} variable(s): {details}')
    return ''.join(f'{name}="{good[name].translate(_ESCAPES)}"\n' for name in sorted(good))


def systemd_env_problems(env) -> list:
    """Return the sorted names of the variables systemd_env_file would refuse (never their values)."""
    return sorted(_scan(env, PROBLEMS_FQCN)[1])


class FilterModule:
    """flaskfleet.stack environment file filters."""

    def filters(self):
        """Map filter names to functions."""
        return {
            'systemd_env_file': systemd_env_file,
            'systemd_env_problems': systemd_env_problems,
        }
