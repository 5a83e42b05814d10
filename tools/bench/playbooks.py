# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-playbook against the bench host, through the engine's connection or over SSH: a timed run with the JSON
callback, an untimed -vvv run that counts remote execs, the SSH master connection opened before the timed runs."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import time

from common import INVENTORY, INVENTORY_SSH, ROOT, SITE, BenchError, log
from playbook_stats import count_execs, summarize_playbook


class Playbooks:
    """The playbook runs of one `make bench` run; their output goes under its run directory."""

    def __init__(self, opts, run_dir: pathlib.Path):
        self.opts = opts
        self.run_dir = run_dir
        # The engine's connection, as tools/bench/inventory.yml picks it.
        self.connection = os.environ.get('FLASKFLEET_ANSIBLE_CONNECTION') or 'community.docker.docker_api'

    def _ansible(self, playbook: pathlib.Path, tags: str | None, extra: dict | None, ssh: bool) -> tuple:
        """(argv after ansible-playbook's options, environment) of a run against the bench host: through the
        engine's connection, or over SSH with tools/bench/inventory-ssh.yml given after the inventory."""
        argv = ['-i', str(INVENTORY)] + (['-i', str(INVENTORY_SSH)] if ssh else []) + [str(playbook)]
        if tags:
            argv += ['--tags', tags]
        if extra:
            argv += ['-e', json.dumps(extra)]
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
        if ssh:
            if not self.opts.ssh_host:
                raise BenchError('no --ssh-host: sshd in the host was not set up (tools/harness/bench.sh does it)')
            env.update(FLASKFLEET_BENCH_SSH_HOST=self.opts.ssh_host, FLASKFLEET_BENCH_SSH_KEY=self.opts.ssh_key,
                       FLASKFLEET_BENCH_SSH_KNOWN_HOSTS=self.opts.ssh_known_hosts)
        return argv, env

    def _address(self, ssh: bool) -> str:
        """The host as the connection names it in its -vvv lines: the container's name, or the SSH address."""
        return self.opts.ssh_host if ssh else self.opts.host

    def run(self, label: str, playbook: pathlib.Path, tags: str | None = None, extra: dict | None = None,
            ssh: bool = False, log_execs: bool = False) -> dict:
        """Run a playbook against the bench host with the JSON callback; time it and count what ran. With log_execs
        (the fresh runs, which cannot be repeated), the connection's -vvv lines go to a log file, not the output
        (ANSIBLE_LOG_VERBOSITY=3, display verbosity unchanged), and its remote execs are counted from it."""
        args, env = self._ansible(playbook, tags, extra, ssh)
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / f'{label}.log'
        if log_execs:
            log_path.unlink(missing_ok=True)
            env.update(ANSIBLE_LOG_PATH=str(log_path), ANSIBLE_LOG_VERBOSITY='3')
        log(f'converge {label}: {shlex.join(args[args.index(str(playbook)):])}' + (' (over SSH)' if ssh else ''))
        start = time.monotonic()
        proc = subprocess.run(['ansible-playbook'] + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
                              check=False)
        seconds = round(time.monotonic() - start, 1)
        (self.run_dir / f'{label}.json').write_text(proc.stdout, encoding='utf-8')
        (self.run_dir / f'{label}.stderr').write_text(proc.stderr, encoding='utf-8')
        try:
            report = json.loads(proc.stdout)
        except ValueError as exc:
            raise BenchError(f'{label}: no JSON from ansible-playbook (exit {proc.returncode}):\n{proc.stderr[-3000:]}') from exc
        summary = summarize_playbook(report, self.opts.host)
        summary.update(seconds=seconds, playbook=str(playbook.relative_to(ROOT)), tags=tags, extra_vars=extra or {},
                       connection='ansible.builtin.ssh' if ssh else self.connection)
        if proc.returncode != 0:
            raise BenchError(f'{label}: ansible-playbook exited {proc.returncode}: {summary.get("failed_tasks")}')
        if log_execs:
            summary['execs'] = count_execs(log_path.read_text(encoding='utf-8', errors='replace'), self._address(ssh))
            summary['execs'].update(counted='on this timed run, from its log file (ANSIBLE_LOG_VERBOSITY=3)',
                                    log=str(log_path.relative_to(ROOT)))
        log(f'converge {label}: {seconds} s, ok={summary["ok"]} changed={summary["changed"]} skipped={summary["skipped"]}, '
            f'{summary["module_runs"]} module runs on the host'
            + (f', {summary["execs"]["remote_execs"]} remote execs' if log_execs else ''))
        return summary

    def count_execs(self, label: str, playbook: pathlib.Path, tags: str | None = None, ssh: bool = False) -> dict:
        """One more run of a playbook after its timed ones, untimed, with -vvv and the default callback: the
        connection's exec lines for the host are counted (count_execs), and its recap kept (a rerun changes nothing)."""
        args, env = self._ansible(playbook, tags, None, ssh)
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.default'
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log(f'count {label}: {shlex.join(args[args.index(str(playbook)):])} -vvv (untimed)' + (' (over SSH)' if ssh else ''))
        start = time.monotonic()
        proc = subprocess.run(['ansible-playbook', '-vvv'] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=3600, check=False)
        seconds = round(time.monotonic() - start, 1)
        path = self.run_dir / f'{label}.vvv.log'
        path.write_text(proc.stdout + proc.stderr, encoding='utf-8')
        if proc.returncode != 0:
            raise BenchError(f'{label}: ansible-playbook -vvv exited {proc.returncode}; see {path.relative_to(ROOT)}')
        result = count_execs(proc.stdout + '\n' + proc.stderr, self._address(ssh))
        recap = re.search(rf'^{re.escape(self.opts.host)}\s+:\s+ok=(\d+)\s+changed=(\d+)', proc.stdout, re.MULTILINE)
        result.update(counted='on one extra untimed run with -vvv', log=str(path.relative_to(ROOT)), untimed_seconds=seconds,
                      ok=int(recap.group(1)) if recap else None, changed=int(recap.group(2)) if recap else None,
                      connection='ansible.builtin.ssh' if ssh else self.connection)
        log(f'count {label}: {result["remote_execs"]} remote execs ({result["commands"]} commands, '
            f'{result["transfer_sessions"]} file-transfer sessions; {result["puts"]} PUT, {result["fetches"]} FETCH), '
            f'changed={result["changed"]}')
        return result

    def ssh_warmup(self) -> None:
        """Open the SSH master connection before the timed runs (ControlPersist keeps it between them), and prove
        that sshd answers through the SSH inventory."""
        _args, env = self._ansible(SITE, None, None, ssh=True)
        argv = ['ansible', '-i', str(INVENTORY), '-i', str(INVENTORY_SSH), self.opts.host, '-m', 'ansible.builtin.ping']
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise BenchError(f'ping over SSH failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
        log(f'ssh: {self.opts.host} answers at {self.opts.ssh_host} (master connection open)')
