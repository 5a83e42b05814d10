# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every part of the bench shares: the checkout's paths, the names on the bench host, the sizes of the loads,
the bench's error and its progress line."""
from __future__ import annotations

import datetime
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / '.cache' / 'bench'
INVENTORY = ROOT / 'tools' / 'bench' / 'inventory.yml'
# Given after INVENTORY: the same host over SSH (the FLASKFLEET_BENCH_SSH_* variables from --ssh-*).
INVENTORY_SSH = ROOT / 'tools' / 'bench' / 'inventory-ssh.yml'
SITE = ROOT / 'playbooks' / 'site.yml'
BASELINE = ROOT / 'tools' / 'bench' / 'baseline.yml'

APP = 'app'
UNIT = 'gunicorn-app'
CELERY_UNIT = 'celery-app-default'
CONFIG = '/etc/flaskfleet/gunicorn-app.conf.py'
ENV_FILE = '/etc/flaskfleet/app.env'
VENV = '/srv/app/current/venv'
DIRECT_UNIT = 'gunicorn-bench-direct'
DIRECT_PORT = 8000
# The web host's roles (what a host only in flask_web gets); the checks always run.
WEB_TAGS = 'ca_certificates,flask_app,gunicorn,nginx'

IO_WAIT_MS = 50
CPU_TARGET_MS = 5.0
CELERY_BATCH = 200
CELERY_TASK_MS = 50
LATENCY_SAMPLES = 20


class BenchError(Exception):
    """The bench itself broke (not a missed target)."""


def log(message: str) -> None:
    """One progress line on stderr (the table goes to stdout)."""
    print(f'bench [{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
