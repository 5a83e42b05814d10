# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench's arithmetic on measured values: a percentile of samples, a ratio of two values that may be missing."""
from __future__ import annotations


def percentile(values: list, pct: float):
    """Nearest-rank percentile of a list of numbers (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(pct / 100.0 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def ratio(top, bottom, digits=2):
    """top / bottom, rounded; None when either is missing."""
    if top is None or not bottom:
        return None
    return round(top / bottom, digits)
