# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench's HTTPS client is the tests' one: molecule/resources/tests/flaskfleet_testlib/https.py (by the site's
name, SNI, the certificate not checked). This module puts the tests' directory on sys.path and names what the
bench uses of it."""
from __future__ import annotations

import sys

from common import ROOT

# The directory pytest runs the testinfra tests from: its package flaskfleet_testlib holds the client.
TESTS = ROOT / 'molecule' / 'resources' / 'tests'
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

# (imported after the path above: ansible-test's pep8 and pylint allow it)
from flaskfleet_testlib.https import Session
from flaskfleet_testlib.stack import SITE_NAME

__all__ = ['SITE_NAME', 'Session']
