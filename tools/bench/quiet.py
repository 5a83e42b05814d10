# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting for a quiet machine before each round of measurement, and the record of every wait."""
from __future__ import annotations

import os
import time

from common import log
from cpu_accounting import cpu_busy


def wait_quiet(opts, waits: list, label: str) -> None:
    """Wait until the machine's CPUs are at most quiet_busy % busy over 3 s, for up to quiet_wait seconds each time
    and quiet_budget in all: other work on the machine (tests beside the bench) skews every number. What was
    waited for, and whether the machine was quiet, is appended to `waits` (the record's quiet list)."""
    limit = min(opts.quiet_wait, max(0.0, opts.quiet_budget - sum(entry['waited_s'] for entry in waits)))
    busy = cpu_busy(3.0)
    start = time.monotonic()
    if busy > opts.quiet_busy and limit > 0:
        log(f'waiting up to {limit:.0f} s for a quieter machine before {label}: CPUs {busy:.0f} % busy')
    while busy > opts.quiet_busy and time.monotonic() - start < limit:
        busy = cpu_busy(3.0)
    waited = time.monotonic() - start
    waits.append({'before': label, 'waited_s': round(waited, 1), 'cpu_busy_pct': round(busy, 1),
                  'quiet': busy <= opts.quiet_busy, 'load1': round(os.getloadavg()[0], 2)})
