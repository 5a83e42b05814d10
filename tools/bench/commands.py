# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench's commands: on the controller, bounded in time, and in the host container through the engine's CLI."""
from __future__ import annotations

import shlex
import subprocess

from common import BenchError


def run(argv: list, timeout: float, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """A command on the controller, bounded in time; BenchError when it fails and check is set."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BenchError(f'{shlex.join(argv[:6])}... exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
    return proc


class Host:
    """The host container under test, reached with the engine's CLI (`<cli> exec`)."""

    def __init__(self, cli: str, name: str):
        self.cli, self.name = cli, name

    def shell(self, script: str, timeout: float = 120, stdin: str | None = None, check: bool = True) -> str:
        """A shell script in the host container (as root); its stdout, stripped."""
        argv = [self.cli, 'exec'] + (['-i'] if stdin is not None else []) + [self.name, 'sh', '-c', script]
        return run(argv, timeout, stdin=stdin, check=check).stdout.strip()
