# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Gunicorn configurations under load: the live one, one set through the roles' variables (a converge), and a
second Gunicorn started by hand (systemd-run) from the release venv with the live configuration file and a TCP bind,
for the numbers straight to Gunicorn."""
from __future__ import annotations

import http.client
import json
import re
import shlex
import time

from commands import Host
from common import APP, CONFIG, DIRECT_PORT, DIRECT_UNIT, ENV_FILE, SITE, VENV, BenchError
from playbooks import Playbooks


def describe(config: dict) -> str:
    """A Gunicorn configuration in a few words: 2 gevent, 3 gthread x 4 threads."""
    text = f'{config["workers"]} {config["worker_class"]}'
    if config['worker_class'] == 'gthread':
        text += f' x {config["threads"]} threads'
    return text


class Gunicorn:
    """The bench host's Gunicorn; each converge is kept in `configurations`, the record's part of them."""

    def __init__(self, host: Host, playbooks: Playbooks, address: str, configurations: dict):
        self.host, self.playbooks, self.address, self.configurations = host, playbooks, address, configurations

    def config(self) -> dict:
        """The live configuration file's worker settings."""
        text = self.host.shell(f'cat {CONFIG}')
        found = {}
        for name in ('workers', 'threads', 'worker_class', 'worker_connections', 'keepalive', 'max_requests'):
            match = re.search(rf'^{name} = (.+)$', text, re.MULTILINE)
            found[name] = json.loads(match.group(1)) if match else None
        return found

    def converge(self, label: str, extra: dict, also_celery: dict | None = None) -> dict:
        """Converge Gunicorn (and nginx, whose upstream follows the worker class) with the roles' variables."""
        tags = 'gunicorn,nginx' + (',celery' if also_celery else '')
        summary = self.playbooks.run(label, SITE, tags=tags, extra=dict(extra, **(also_celery or {})))
        config = self.config()
        self.configurations[label] = {'extra_vars': extra, 'gunicorn': config, 'converge': summary}
        return config

    def direct_url(self, path: str) -> str:
        """Straight to the hand-started Gunicorn over plain HTTP."""
        return f'http://{self.address}:{DIRECT_PORT}{path}'

    def direct_start(self, worker_class: str, workers: int, threads: int = 1, max_requests: int | None = None) -> None:
        """A second Gunicorn (transient unit) with the live configuration file, bound to TCP."""
        self.direct_stop()
        command = [
            'systemd-run', f'--unit={DIRECT_UNIT}', '--collect', '-p', f'User={APP}', '-p', f'Group={APP}',
            '-p', f'EnvironmentFile={ENV_FILE}', '-p', f'WorkingDirectory=/srv/{APP}', '-p', 'LimitNOFILE=4096',
            '-p', f'RuntimeDirectory={DIRECT_UNIT}',
            f'{VENV}/bin/python', f'{VENV}/bin/gunicorn', '--config', CONFIG, '--bind', f'0.0.0.0:{DIRECT_PORT}',
            '--no-control-socket', '--worker-tmp-dir', f'/run/{DIRECT_UNIT}',
            '--worker-class', worker_class, '--workers', str(workers), '--threads', str(threads),
        ] + (['--max-requests', str(max_requests)] if max_requests is not None else [])
        self.host.shell(shlex.join(command))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(self.address, DIRECT_PORT, timeout=5)
                conn.request('GET', '/healthz')
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.5)
        status = self.host.shell(f'systemctl status {DIRECT_UNIT} --no-pager -n 20', check=False)
        raise BenchError(f'the direct Gunicorn did not answer on port {DIRECT_PORT}:\n{status}')

    def direct_stop(self) -> None:
        """Stop the hand-started Gunicorn (nothing when none runs)."""
        self.host.shell(f'systemctl stop {DIRECT_UNIT} 2>/dev/null; '
                        f'systemctl reset-failed {DIRECT_UNIT} 2>/dev/null; true', check=False)
