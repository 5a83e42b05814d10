# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The names of what the scenarios converge (the site, the app and its unit) and the supervision backend."""
from __future__ import annotations

import os
import pathlib

# The checkout (molecule/resources/tests/flaskfleet_testlib/ is four levels down).
ROOT = pathlib.Path(__file__).resolve().parents[4]

SITE_NAME = "app.example.test"
APP = "app"
SERVICE = f"gunicorn-{APP}"
# The supervision backend the scenario converged with (molecule.yml verifier env).
SUPERVISOR = os.environ.get("FLASKFLEET_SUPERVISOR", "systemd")
# Under supervisord, the kernel's hard limit is supervisord's own unit.
CAPPED_UNIT = SERVICE if SUPERVISOR == "systemd" else "supervisor.service"
SUPERVISORD_OVERHEAD_MB = 128
