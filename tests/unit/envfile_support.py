# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared by the env-file tests: the flaskfleet-envexec helper loaded as a module, and systemd's own parser."""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import pathlib
import re
from importlib.machinery import SourceFileLoader

ENVEXEC = pathlib.Path(__file__).resolve().parents[2] / 'roles' / 'supervise' / 'files' / 'flaskfleet-envexec'
_LOADER = SourceFileLoader('flaskfleet_envexec', str(ENVEXEC))
envexec = importlib.util.module_from_spec(importlib.util.spec_from_loader(_LOADER.name, _LOADER))
_LOADER.exec_module(envexec)


def systemd_parser():
    """(version, load) for systemd's own parser from libsystemd-shared, or None."""
    paths = sorted(glob.glob('/usr/lib/*/systemd/libsystemd-shared-*.so') + glob.glob('/usr/lib*/systemd/libsystemd-shared-*.so'))
    if not paths:
        return None
    try:
        lib = ctypes.CDLL(paths[-1])
    except OSError:
        return None
    strv = ctypes.POINTER(ctypes.c_char_p)
    lib.load_env_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(strv)]
    lib.load_env_file.restype = ctypes.c_int
    lib.strv_env_clean_with_callback.argtypes = [strv, ctypes.c_void_p, ctypes.c_void_p]
    lib.strv_env_clean_with_callback.restype = strv
    lib.strv_free.argtypes = [strv]
    lib.strv_free.restype = strv

    def load(path) -> dict | None:
        """load_env_file() then strv_env_clean(), as exec_context_load_environment() does; None if it fails."""
        result = strv()
        if lib.load_env_file(None, os.fsencode(path), ctypes.byref(result)) < 0:
            return None
        result = lib.strv_env_clean_with_callback(result, None, None)
        pairs, index = {}, 0
        while result and result[index] is not None:
            name, _sep, value = result[index].partition(b'=')
            pairs[name] = value
            index += 1
        lib.strv_free(result)
        return pairs

    return int(re.search(r'libsystemd-shared-(\d+)', paths[-1]).group(1)), load
