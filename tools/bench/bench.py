# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# pylint: disable=too-many-lines  # one file to read: the measurements, the record and its table
"""`make bench`: converge the stack into a container, load it from another one, print the ratios.

Run by tools/harness/bench.sh (inside tools/harness/engine.sh), which makes
the containers: the host under test (web, Celery worker, Redis, Loki and
Promtail, from tools/bench/inventory.yml; sshd for the SSH rows) and, when
loads are asked for, a client with wrk on the same network.

    python tools/bench/bench.py --cli podman --host flaskfleet-bench \\
        --client flaskfleet-bench-client --ip 10.89.2.2 --ssh-host 10.89.2.2

The converge rows (fresh, reruns, whole stack, SSH, remote execs counted at
the connection) are described in docs/bench.md.

Each Gunicorn and Celery configuration is set through the roles' own
variables (ansible-playbook ... -e); the numbers straight to Gunicorn come
from a second Gunicorn started by hand (systemd-run) from the release venv
with the live configuration file and a TCP bind. The table goes to stdout;
the whole record to .cache/bench/bench-<timestamp>.json and latest.json.
A missed target is reported, not fatal: the exit status is 1 only when the
bench itself broke.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import re
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / '.cache' / 'bench'
INVENTORY = ROOT / 'tools' / 'bench' / 'inventory.yml'
# Given after INVENTORY: the same host over SSH (the FLASKFLEET_BENCH_SSH_* variables from --ssh-*).
INVENTORY_SSH = ROOT / 'tools' / 'bench' / 'inventory-ssh.yml'
SITE = ROOT / 'playbooks' / 'site.yml'
BASELINE = ROOT / 'tools' / 'bench' / 'baseline.yml'

SERVER_NAME = 'app.example.test'
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
# The converge targets of the issue (reported beside the measured values, never fatal).
RERUN_RATIO_GOAL = 1.5
FRESH_RATIO_GOAL = 1.5
WEB_RERUN_EXECS_GOAL = 25
STACK_RERUN_EXECS_GOAL = 55

IO_WAIT_MS = 50
CPU_TARGET_MS = 5.0
CELERY_BATCH = 200
CELERY_TASK_MS = 50
LATENCY_SAMPLES = 20

# Actions that run on the controller only: they are tasks, not module runs on the host.
CONTROLLER_ACTIONS = frozenset((
    'add_host', 'assert', 'debug', 'fail', 'group_by', 'import_role', 'import_tasks', 'include_role',
    'include_tasks', 'include_vars', 'meta', 'pause', 'set_fact', 'set_stats', 'validate_argument_spec',
))


class BenchError(Exception):
    """The bench itself broke (not a missed target)."""


def log(message: str) -> None:
    """One progress line on stderr (the table goes to stdout)."""
    print(f'bench [{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# ------------------------------------------------------------------ wrk

_DURATION = re.compile(r'([0-9.]+)(us|ms|s|m|h)$')
_UNIT_MS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0, 'h': 3600000.0}


def _ms(text: str) -> float:
    """A wrk duration (850.12us, 52.3ms, 1.2s, 2m) in milliseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise BenchError(f'wrk: cannot read the duration {text!r}')
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """Requests, seconds, latency percentiles and errors from wrk --latency output."""
    result = {'non_2xx_3xx': 0, 'socket_errors': {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0}}
    done = re.search(r'(\d+) requests in ([0-9.]+\w+),', output)
    if not done:
        raise BenchError(f'wrk printed no summary:\n{output}')
    result['requests'] = int(done.group(1))
    result['seconds'] = round(_ms(done.group(2)) / 1000.0, 3)
    for pct in ('50', '75', '90', '99'):
        match = re.search(rf'^\s+{pct}(?:\.000)?%\s+(\S+)\s*$', output, re.MULTILINE)
        result[f'p{pct}_ms'] = round(_ms(match.group(1)), 2) if match else None
    latency = re.search(r'^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)', output, re.MULTILINE)
    result['max_ms'] = round(_ms(latency.group(3)), 2) if latency else None
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', output)
    if errors:
        result['socket_errors'] = dict(zip(('connect', 'read', 'write', 'timeout'), map(int, errors.groups())))
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', output)
    if bad:
        result['non_2xx_3xx'] = int(bad.group(1))
    rate = re.search(r'Requests/sec:\s+([0-9.]+)', output)
    result['wrk_requests_per_s'] = float(rate.group(1)) if rate else None
    result['errors'] = result['non_2xx_3xx'] + sum(result['socket_errors'].values())
    # Good answers per second: a 502 is not throughput.
    result['rps'] = round((result['requests'] - result['non_2xx_3xx']) / result['seconds'], 1) if result['seconds'] else 0.0
    return result


# ---------------------------------------------------------- HTTPS client

class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address with the server name nginx serves (SNI), certificate not checked (self-signed)."""

    def __init__(self, address: str, server_name: str, timeout: float):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(address, 443, timeout=timeout, context=context)
        self._server_name = server_name
        self._tls = context

    def connect(self):
        """TCP to the address, TLS with the server name."""
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._server_name)


class Web:
    """Requests through nginx from the controller (outside the web container), one kept-alive connection."""

    def __init__(self, address: str):
        self.address = address
        self.conn = None

    def request(self, method: str, path: str) -> tuple:
        """(status, decoded JSON body); one reconnection when the kept-alive connection was closed."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = _SNIConnection(self.address, SERVER_NAME, timeout=30)
            try:
                self.conn.request(method, path, headers={'Host': SERVER_NAME})
                response = self.conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            try:
                return response.status, json.loads(body)
            except ValueError:
                return response.status, {'raw': body[:200].decode('utf-8', 'replace')}
        raise BenchError('unreachable')

    def close(self):
        """Drop the kept-alive connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _cpu_times() -> tuple:
    """(all, idle) CPU time of the machine since boot, in ticks, from /proc/stat."""
    with open('/proc/stat', encoding='ascii') as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]), idle


def cpu_busy(seconds: float) -> float:
    """Percent of the machine's CPU time spent busy (all CPUs, steal included) over the next `seconds`."""
    total_before, idle_before = _cpu_times()
    time.sleep(seconds)
    total_after, idle_after = _cpu_times()
    total = total_after - total_before
    return 100.0 * (total - (idle_after - idle_before)) / total if total else 0.0


def container_cpu_file(pid: str) -> tuple:
    """(file, kind) holding the CPU time of the container whose init has this pid, read on the controller:
    cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec); (None, None) when neither is readable."""
    v2_path = None
    for line in pathlib.Path(f'/proc/{pid}/cgroup').read_text(encoding='utf-8').splitlines():
        number, controllers, path = line.split(':', 2)
        if 'cpuacct' in controllers.split(','):
            for base in ('/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpuacct'):
                if pathlib.Path(f'{base}{path}/cpuacct.usage').exists():
                    return f'{base}{path}/cpuacct.usage', 'v1'
        if number == '0' and not controllers:
            v2_path = path.removesuffix('/init.scope')
    if v2_path is not None and pathlib.Path(f'/sys/fs/cgroup{v2_path}/cpu.stat').exists():
        return f'/sys/fs/cgroup{v2_path}/cpu.stat', 'v2'
    return None, None


def cpu_ns(source: tuple) -> int | None:
    """CPU time used so far, in ns, from a container_cpu_file() result."""
    path, kind = source
    if path is None:
        return None
    text = pathlib.Path(path).read_text(encoding='ascii')
    if kind == 'v1':
        return int(text.strip())
    match = re.search(r'^usage_usec (\d+)$', text, re.MULTILINE)
    return int(match.group(1)) * 1000 if match else None


def cpu_snapshot(sources: dict) -> dict:
    """The containers' CPU time and the whole machine's (all CPUs, busy and idle), in ns."""
    total, idle = _cpu_times()
    tick_ns = 1e9 / os.sysconf('SC_CLK_TCK')
    snap = {'machine_total': total * tick_ns, 'machine_idle': idle * tick_ns}
    for name, source in sources.items():
        snap[name] = cpu_ns(source)
    return snap


def cpu_split(before: dict, after: dict, requests: int) -> dict:
    """Where the CPU went during one run: per request on the host container (nginx, Gunicorn, the journal...) and in
    the client (wrk); the share of the machine's CPU time the two got; how busy the machine was."""
    total = after['machine_total'] - before['machine_total']
    busy = total - (after['machine_idle'] - before['machine_idle'])
    result = {'machine_busy_pct': round(100.0 * busy / total, 1) if total else None}
    if before.get('host') is None or before.get('client') is None or not total:
        return result
    host = after['host'] - before['host']
    client = after['client'] - before['client']
    result.update(host_cpu_ms_per_request=round(host / 1e6 / max(requests, 1), 3),
                  client_cpu_ms_per_request=round(client / 1e6 / max(requests, 1), 3),
                  bench_share_of_machine_pct=round(100.0 * (host + client) / total, 1))
    return result


def percentile(values: list, pct: float):
    """Nearest-rank percentile of a list of numbers (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(pct / 100.0 * len(ordered) + 0.5))))
    return ordered[rank - 1]


# Run inside the host with the release venv: wait for a batch of tasks
# through the result backend and print each one's state and date_done.
_CELERY_WAIT = r'''
import datetime, json, os, re, sys, time
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        line = line.rstrip("\n")
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        os.environ[key] = value
from flaskfleet_demo.tasks import celery
ids = json.load(sys.stdin)
deadline = time.time() + float(sys.argv[2])
done = {}
while len(done) < len(ids) and time.time() < deadline:
    for task_id in ids:
        if task_id in done:
            continue
        result = celery.AsyncResult(task_id)
        if result.state in ("SUCCESS", "FAILURE", "REVOKED"):
            when = result.date_done
            if isinstance(when, str):
                when = datetime.datetime.fromisoformat(when)
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            done[task_id] = [result.state, when.timestamp() if when else None]
    time.sleep(0.2)
print(json.dumps(done))
'''


# ------------------------------------------------------------- the bench

class Bench:
    """The containers, the measurements and the record of one `make bench` run."""

    def __init__(self, args):
        self.opts = args
        self.stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        self.run_dir = OUT / 'runs' / self.stamp
        self.web = Web(args.ip)
        # The engine's connection, as tools/bench/inventory.yml picks it.
        self.connection = os.environ.get('FLASKFLEET_ANSIBLE_CONNECTION') or 'community.docker.docker_api'
        self.found = {'cpu_n': None, 'nproc': None, 'cgroup_v2': None}
        self.cpu_sources = {}
        self.record = {
            'started': utc_now(),
            'machine': {},
            'settings': {
                'connections': args.connections, 'threads': args.threads, 'duration_s': args.duration,
                'wrk_timeout_s': 10, 'warmup_s': args.warmup, 'repeats': args.repeats, 'reruns': args.reruns,
                'quiet_busy_pct': args.quiet_busy, 'quiet_wait_s': args.quiet_wait, 'quiet_budget_s': args.quiet_budget,
                'io_wait_ms': IO_WAIT_MS, 'cpu_target_ms': CPU_TARGET_MS, 'celery_batch': CELERY_BATCH,
                'celery_task_ms': CELERY_TASK_MS, 'host': args.host, 'client': args.client, 'host_ip': args.ip,
                'phases': args.phases, 'ssh_host': args.ssh_host,
            },
            'converge': {}, 'configurations': {}, 'loads': {}, 'celery': {}, 'memory': {}, 'targets': [], 'quiet': [],
        }

    # ----------------------------------------------------------- helpers

    def _run(self, argv: list, timeout: float, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """A command on the controller, bounded in time; BenchError when it fails and check is set."""
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise BenchError(f'{shlex.join(argv[:6])}... exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
        return proc

    def _on_host(self, script: str, timeout: float = 120, stdin: str | None = None, check: bool = True) -> str:
        """A shell script in the host container (as root); its stdout, stripped."""
        argv = [self.opts.cli, 'exec'] + (['-i'] if stdin is not None else []) + [self.opts.host, 'sh', '-c', script]
        return self._run(argv, timeout, stdin=stdin, check=check).stdout.strip()

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

    def _playbook(self, label: str, playbook: pathlib.Path, tags: str | None = None, extra: dict | None = None,
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

    def _count_execs(self, label: str, playbook: pathlib.Path, tags: str | None = None, ssh: bool = False) -> dict:
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

    def _wrk_argv(self, url: str, seconds: int) -> list:
        """wrk in the client container, bounded by timeout(1) as well as by its duration."""
        return [self.opts.cli, 'exec', self.opts.client, 'timeout', str(seconds + 60), 'wrk', f'-t{self.opts.threads}',
                f'-c{self.opts.connections}', f'-d{seconds}s', '--timeout', '10s', '--latency', url]

    def _settle(self, direct: bool) -> float:
        """Wait until /healthz answers within 100 ms: what an earlier run left queued is served first."""
        deadline = time.monotonic() + 30
        while True:
            start = time.monotonic()
            try:
                if direct:
                    conn = http.client.HTTPConnection(self.opts.ip, DIRECT_PORT, timeout=30)
                    conn.request('GET', '/healthz')
                    status = conn.getresponse().status
                    conn.close()
                else:
                    status, _body = self.web.request('GET', '/healthz')
            except (OSError, http.client.HTTPException):
                status = None
            took = time.monotonic() - start
            if (status == 200 and took < 0.1) or time.monotonic() > deadline:
                return round(took * 1000.0, 1)
            time.sleep(0.2)

    def _one_load(self, spec: dict) -> dict:
        """One measured wrk run of a spec (after a warm-up and the settle), starting the direct Gunicorn when it needs one."""
        direct = spec.get('direct')
        url = self._direct_url(spec['path']) if direct else self._nginx_url(spec['path'])
        if direct:
            self._direct_start(**direct)
        try:
            if self.opts.warmup:
                self._run(self._wrk_argv(url, self.opts.warmup), timeout=self.opts.warmup + 90)
            settled_ms = self._settle(bool(direct))
            load_before = os.getloadavg()[0]
            before = cpu_snapshot(self.cpu_sources)
            proc = self._run(self._wrk_argv(url, self.opts.duration), timeout=self.opts.duration + 90)
            after = cpu_snapshot(self.cpu_sources)
        finally:
            if direct:
                self._direct_stop()
        result = parse_wrk(proc.stdout)
        result.update(load1_before=round(load_before, 2), load1_after=round(os.getloadavg()[0], 2), settled_ms=settled_ms)
        result.update(cpu_split(before, after, result['requests']))
        log(f'  {spec["key"]}: {result["rps"]} req/s, p50 {result["p50_ms"]} ms, p99 {result["p99_ms"]} ms, '
            f'errors {result["errors"]}; machine {result["machine_busy_pct"]} % busy, '
            f'the bench got {result.get("bench_share_of_machine_pct")} % of it')
        return result

    def _wait_quiet(self, label: str) -> None:
        """Wait until the machine's CPUs are at most quiet_busy % busy over 3 s, for up to quiet_wait seconds each time
        and quiet_budget in all: other work on the machine (tests beside the bench) skews every number. What was
        waited for, and whether the machine was quiet, is recorded."""
        limit = min(self.opts.quiet_wait, max(0.0, self.opts.quiet_budget - sum(entry['waited_s'] for entry in self.record['quiet'])))
        busy = cpu_busy(3.0)
        start = time.monotonic()
        if busy > self.opts.quiet_busy and limit > 0:
            log(f'waiting up to {limit:.0f} s for a quieter machine before {label}: CPUs {busy:.0f} % busy')
        while busy > self.opts.quiet_busy and time.monotonic() - start < limit:
            busy = cpu_busy(3.0)
        waited = time.monotonic() - start
        self.record['quiet'].append({'before': label, 'waited_s': round(waited, 1), 'cpu_busy_pct': round(busy, 1),
                                     'quiet': busy <= self.opts.quiet_busy, 'load1': round(os.getloadavg()[0], 2)})

    def measure(self, specs: list) -> None:
        """Each spec `repeats` times, interleaved (A B C A B C): every configuration sees the same slices of whatever
        else the machine runs, and the median of its runs is kept."""
        runs = {spec['key']: [] for spec in specs}
        for index in range(self.opts.repeats):
            self._wait_quiet(f'round {index + 1} of {", ".join(spec["key"] for spec in specs)}')
            log(f'loads, round {index + 1} of {self.opts.repeats}: {", ".join(spec["key"] for spec in specs)}')
            for spec in specs:
                runs[spec['key']].append(self._one_load(spec))
        for spec in specs:
            result = aggregate(runs[spec['key']])
            result.update(label=spec['label'], configuration=spec['config'], via='direct' if spec.get('direct') else 'nginx',
                          url=self._direct_url(spec['path']) if spec.get('direct') else self._nginx_url(spec['path']))
            if spec.get('direct'):
                result['direct_settings'] = spec['direct']
            self.record['loads'][spec['key']] = result
            log(f'load {spec["key"]}: median {result["rps"]} req/s, p50 {result["p50_ms"]} ms, p99 {result["p99_ms"]} ms, '
                f'errors {result["errors"]}')

    def _nginx_url(self, path: str) -> str:
        """Through nginx over HTTPS, by the site's name (the client resolves it to the host)."""
        return f'https://{SERVER_NAME}{path}'

    def _direct_url(self, path: str) -> str:
        """Straight to the hand-started Gunicorn over plain HTTP."""
        return f'http://{self.opts.ip}:{DIRECT_PORT}{path}'

    # ----------------------------------------------------------- machine

    def _machine(self) -> dict:
        """What the numbers were measured on: CPUs, memory, kernel, cgroup version, load, tool versions."""
        info = {'nproc': os.cpu_count(), 'kernel': platform.release(), 'load_before': [round(x, 2) for x in os.getloadavg()]}
        try:
            info['nproc'] = len(os.sched_getaffinity(0))
        except AttributeError:
            pass
        for line in pathlib.Path('/proc/cpuinfo').read_text(encoding='utf-8', errors='replace').splitlines():
            if line.startswith('model name'):
                info['cpu_model'] = line.split(':', 1)[1].strip()
                break
        for line in pathlib.Path('/proc/meminfo').read_text(encoding='utf-8').splitlines():
            if line.startswith('MemTotal:'):
                info['memory_mb'] = int(line.split()[1]) // 1024
        info['cgroup'] = 'v2' if pathlib.Path('/sys/fs/cgroup/cgroup.controllers').exists() else 'v1'
        info['engine'] = self._run([self.opts.cli, '--version'], 60).stdout.strip()
        info['ansible'] = self._run(['ansible-playbook', '--version'], 60).stdout.splitlines()[0].strip()
        if self.opts.client:
            wrk_version = self._run([self.opts.cli, 'exec', self.opts.client, 'wrk', '-v'], 60, check=False)
            text = (wrk_version.stdout + wrk_version.stderr).strip()
            info['wrk'] = text.splitlines()[0] if text else 'wrk'
        info['host_nproc'] = int(self._on_host('nproc'))
        self.found['nproc'] = info['host_nproc']
        for role, name in (('host', self.opts.host), ('client', self.opts.client)):
            if not name:
                continue
            pid = self._run([self.opts.cli, 'inspect', '--format', '{{.State.Pid}}', name], 60).stdout.strip()
            self.cpu_sources[role] = container_cpu_file(pid)
        info['container_cpu_accounting'] = {role: source[1] for role, source in self.cpu_sources.items()}
        self.found['cgroup_v2'] = self._on_host('test -e /sys/fs/cgroup/cgroup.controllers && echo v2 || echo v1') == 'v2'
        return info

    # ---------------------------------------------------------- gunicorn

    def _gunicorn_config(self) -> dict:
        """The live configuration file's worker settings."""
        text = self._on_host(f'cat {CONFIG}')
        found = {}
        for name in ('workers', 'threads', 'worker_class', 'worker_connections', 'keepalive', 'max_requests'):
            match = re.search(rf'^{name} = (.+)$', text, re.MULTILINE)
            found[name] = json.loads(match.group(1)) if match else None
        return found

    def _converge_gunicorn(self, label: str, extra: dict, also_celery: dict | None = None) -> dict:
        """Converge Gunicorn (and nginx, whose upstream follows the worker class) with the roles' variables."""
        tags = 'gunicorn,nginx' + (',celery' if also_celery else '')
        summary = self._playbook(label, SITE, tags=tags, extra=dict(extra, **(also_celery or {})))
        config = self._gunicorn_config()
        self.record['configurations'][label] = {'extra_vars': extra, 'gunicorn': config, 'converge': summary}
        return config

    def _direct_start(self, worker_class: str, workers: int, threads: int = 1, max_requests: int | None = None) -> None:
        """A second Gunicorn (transient unit) with the live configuration file, bound to TCP."""
        self._direct_stop()
        command = [
            'systemd-run', f'--unit={DIRECT_UNIT}', '--collect', '-p', f'User={APP}', '-p', f'Group={APP}',
            '-p', f'EnvironmentFile={ENV_FILE}', '-p', f'WorkingDirectory=/srv/{APP}', '-p', 'LimitNOFILE=4096',
            '-p', f'RuntimeDirectory={DIRECT_UNIT}',
            f'{VENV}/bin/python', f'{VENV}/bin/gunicorn', '--config', CONFIG, '--bind', f'0.0.0.0:{DIRECT_PORT}',
            '--no-control-socket', '--worker-tmp-dir', f'/run/{DIRECT_UNIT}',
            '--worker-class', worker_class, '--workers', str(workers), '--threads', str(threads),
        ] + (['--max-requests', str(max_requests)] if max_requests is not None else [])
        self._on_host(shlex.join(command))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(self.opts.ip, DIRECT_PORT, timeout=5)
                conn.request('GET', '/healthz')
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.5)
        status = self._on_host(f'systemctl status {DIRECT_UNIT} --no-pager -n 20', check=False)
        raise BenchError(f'the direct Gunicorn did not answer on port {DIRECT_PORT}:\n{status}')

    def _direct_stop(self) -> None:
        """Stop the hand-started Gunicorn (nothing when none runs)."""
        self._on_host(f'systemctl stop {DIRECT_UNIT} 2>/dev/null; systemctl reset-failed {DIRECT_UNIT} 2>/dev/null; true', check=False)

    # ------------------------------------------------------------ memory

    def _cgroup_files(self) -> dict:
        group = self._on_host(f'systemctl show -P ControlGroup {UNIT}')
        if not group:
            raise BenchError(f'{UNIT} has no control group (not running?)')
        if self.found['cgroup_v2']:
            base = f'/sys/fs/cgroup{group}'
            return {'peak': f'{base}/memory.peak', 'events': f'{base}/memory.events', 'v2': True}
        base = f'/sys/fs/cgroup/memory{group}'
        return {'peak': f'{base}/memory.max_usage_in_bytes', 'events': f'{base}/memory.oom_control', 'v2': False}

    def _oom_kills(self, files: dict) -> int:
        text = self._on_host(f'cat {files["events"]}', check=False)
        match = re.search(r'^oom_kill (\d+)$', text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def _memory_begin(self) -> dict:
        """Reset the unit's memory peak where the kernel allows it; note its OOM kills and restarts so far."""
        files = self._cgroup_files()
        reset = False
        if not files['v2']:
            # cgroup v1: writing 0 restarts the peak from the current use.
            reset = self._on_host(f'echo 0 > {files["peak"]} && echo ok', check=False) == 'ok'
        return {'files': files, 'reset': reset, 'oom_kill_before': self._oom_kills(files),
                'restarts_before': int(self._on_host(f'systemctl show -P NRestarts {UNIT}') or 0),
                'main_pid': self._on_host(f'systemctl show -P MainPID {UNIT}')}

    def _memory_end(self, label: str, begun: dict) -> dict:
        """The unit's memory peak since memory_begin against its caps, and the OOM kills and restarts since."""
        files = begun['files']
        peak = self._on_host(f'cat {files["peak"]}', check=False)
        high = self._on_host(f'systemctl show -P MemoryHigh {UNIT}')
        high_max = self._on_host(f'systemctl show -P MemoryMax {UNIT}')
        result = {
            'peak_mb': round(int(peak) / 1048576, 1) if peak.isdigit() else None,
            'memory_high_mb': round(int(high) / 1048576, 1) if high.isdigit() else None,
            'memory_max_mb': round(int(high_max) / 1048576, 1) if high_max.isdigit() else None,
            'peak_since': 'reset before the load' if begun['reset'] else 'the unit started (memory.peak cannot be reset)',
            'oom_kills': self._oom_kills(files) - begun['oom_kill_before'],
            'unit_restarts': int(self._on_host(f'systemctl show -P NRestarts {UNIT}') or 0) - begun['restarts_before'],
            'main_pid_same': self._on_host(f'systemctl show -P MainPID {UNIT}') == begun['main_pid'],
            'cgroup': 'v2' if files['v2'] else 'v1',
        }
        if result['peak_mb'] and result['memory_high_mb']:
            result['peak_share_of_high'] = round(result['peak_mb'] / result['memory_high_mb'], 3)
        self.record['memory'][label] = result
        log(f'memory {label}: peak {result["peak_mb"]} MB of MemoryHigh {result["memory_high_mb"]} MB, '
            f'OOM kills {result["oom_kills"]}')
        return result

    # ----------------------------------------------------------- phases

    def _rounds(self, runs: list, ssh: bool = False) -> dict:
        """`reruns` rounds of timed reruns; in each, every (key, playbook, tags) once, in order, the baseline among
        them: each sees the same slices of whatever else the machine runs. The runs of each key."""
        where = '-ssh' if ssh else ''
        found = {key: [] for key, _playbook, _tags in runs}
        for index in range(1, self.opts.reruns + 1):
            for key, playbook, tags in runs:
                found[key].append(self._playbook(f'{key}-rerun{where}-{index}', playbook, tags=tags, ssh=ssh))
        return found

    @staticmethod
    def _medians(runs: list, baseline: list) -> dict:
        """The median seconds of some reruns and of the baseline's, their ratio, the most tasks any rerun changed."""
        rerun_s = statistics.median(run['seconds'] for run in runs)
        base_s = statistics.median(run['seconds'] for run in baseline)
        return {'rerun_s': rerun_s, 'baseline_rerun_s': base_s, 'rerun_ratio': _ratio(rerun_s, base_s),
                'rerun_changed': max(run['changed'] for run in runs)}

    def phase_converge(self) -> None:
        """The web host fresh and the baseline fresh; the rest of the stack (Redis, Celery, Loki, Promtail: site.yml
        without tags); rounds of reruns of the web host (its tags), the baseline and the whole stack (site.yml); then
        the web host's and the baseline's reruns over SSH. Each rerun's remote execs on one more untimed run with -vvv,
        the fresh runs' from their own log (docs/bench.md)."""
        record = self.record['converge']
        record['connection'] = self.connection
        record['exec_counting'] = EXEC_COUNTING
        record['fresh'] = self._playbook('web-fresh', SITE, tags=WEB_TAGS, log_execs=True)
        record['baseline_fresh'] = self._playbook('baseline-fresh', BASELINE, log_execs=True)
        record['fresh_ratio'] = _ratio(record['fresh']['seconds'], record['baseline_fresh']['seconds'])
        # The whole stack on the same host: Redis, Celery, Loki and Promtail join the web host's roles.
        record['rest_of_stack'] = self._playbook('stack-first', SITE, log_execs=True)
        rounds = self._rounds([('web', SITE, WEB_TAGS), ('baseline', BASELINE, None), ('stack', SITE, None)])
        record['reruns'], record['baseline_reruns'] = rounds['web'], rounds['baseline']
        record.update(self._medians(rounds['web'], rounds['baseline']))
        stack = self._medians(rounds['stack'], rounds['baseline'])
        record['rerun_execs'] = self._count_execs('web-rerun-count', SITE, tags=WEB_TAGS)
        record['baseline_rerun_execs'] = self._count_execs('baseline-rerun-count', BASELINE)
        record['whole_stack'] = dict(stack, reruns=rounds['stack'], rerun_execs=self._count_execs('stack-rerun-count', SITE),
                                     baseline='the same baseline reruns as the web host\'s (rounds: web, baseline, stack)')
        if self.opts.ssh_host:
            self._ssh_warmup()
            rounds = self._rounds([('web', SITE, WEB_TAGS), ('baseline', BASELINE, None)], ssh=True)
            record['ssh'] = dict(self._medians(rounds['web'], rounds['baseline']), reruns=rounds['web'],
                                 baseline_reruns=rounds['baseline'], address=self.opts.ssh_host,
                                 ssh_args='-o ControlMaster=auto -o ControlPersist=60s', pipelining=True,
                                 rerun_execs=self._count_execs('web-rerun-ssh-count', SITE, tags=WEB_TAGS, ssh=True),
                                 baseline_rerun_execs=self._count_execs('baseline-rerun-ssh-count', BASELINE, ssh=True))
        else:
            record['ssh'] = {'skipped': 'no --ssh-host (sshd not set up by tools/harness/bench.sh)'}
        # Out of the way of the loads: the baseline's app, and Loki and Promtail (logs stay in the journal).
        self._on_host('systemctl stop baseline loki promtail', check=False)

    def _ssh_warmup(self) -> None:
        """Open the SSH master connection before the timed runs (ControlPersist keeps it between them), and prove
        that sshd answers through the SSH inventory."""
        _args, env = self._ansible(SITE, None, None, ssh=True)
        argv = ['ansible', '-i', str(INVENTORY), '-i', str(INVENTORY_SSH), self.opts.host, '-m', 'ansible.builtin.ping']
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise BenchError(f'ping over SSH failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}')
        log(f'ssh: {self.opts.host} answers at {self.opts.ssh_host} (master connection open)')

    def calibrate_cpu(self) -> None:
        """Pick n so that one /cpu request is about CPU_TARGET_MS of CPU (its 20th percentile of elapsed_ms)."""
        self._wait_quiet('calibration')
        n = 20000
        tried = []
        for _round in range(5):
            samples = []
            for _index in range(25):
                status, body = self.web.request('GET', f'/cpu?n={n}')
                if status != 200:
                    raise BenchError(f'/cpu?n={n} answered {status}: {body}')
                samples.append(body['elapsed_ms'])
            low = percentile(samples, 20)
            tried.append({'n': n, 'p20_ms': low, 'median_ms': statistics.median(samples)})
            log(f'calibrate: n={n} p20 {low} ms, median {statistics.median(samples)} ms')
            if abs(low - CPU_TARGET_MS) / CPU_TARGET_MS <= 0.15:
                break
            # Trial division up to n costs about n^1.5 / ln n: scale by the 1.4th root.
            n = max(1000, min(5_000_000, int(n * (CPU_TARGET_MS / low) ** (1 / 1.4))))
        self.found['cpu_n'] = tried[-1]['n']
        self.record['cpu_calibration'] = {'n': self.found['cpu_n'], 'p20_ms': tried[-1]['p20_ms'], 'median_ms': tried[-1]['median_ms'],
                                          'rounds': tried}

    def phase_io_plan(self) -> None:
        """The plan for the I/O-bound app is live: its I/O numbers through nginx and straight to Gunicorn, and the trap
        (the same gevent workers on CPU work)."""
        config = self._gunicorn_config()
        self.record['configurations'].setdefault('io-plan', {'extra_vars': {}, 'gunicorn': config})
        name = describe(config)
        same = {'worker_class': config['worker_class'], 'workers': config['workers'], 'threads': config['threads'] or 1}
        begun = self._memory_begin()
        self.measure([
            {'key': 'io_plan_nginx', 'label': 'plan (gunicorn_workload: io)', 'path': f'/io?ms={IO_WAIT_MS}', 'config': name},
            {'key': 'io_plan_direct', 'label': 'plan (gunicorn_workload: io)', 'path': f'/io?ms={IO_WAIT_MS}', 'config': name,
             'direct': same},
            {'key': 'cpu_io_plan_nginx', 'label': 'wrong workload declared: io (gevent) on CPU work',
             'path': f'/cpu?n={self.found["cpu_n"]}', 'config': name},
        ])
        self._memory_end('io-plan', begun)

    def celery_round(self, label: str) -> dict:
        """The live Celery worker: the round trip of a short task, then a batch's throughput."""
        concurrency = self._celery_concurrency()
        self._wait_quiet(f'celery {label}')
        latencies = [self._task_round_trip() for _index in range(LATENCY_SAMPLES)]
        span, enqueued = self._task_batch(label)
        result = {
            'concurrency': concurrency,
            'batch': CELERY_BATCH, 'task_ms': CELERY_TASK_MS,
            'batch_seconds': round(span, 2), 'tasks_per_s': round(CELERY_BATCH / span, 1),
            'enqueue_seconds': round(enqueued, 2),
            'ideal_tasks_per_s': round(concurrency * 1000.0 / CELERY_TASK_MS, 1),
            'latency_ms': {'p50': round(statistics.median(latencies), 1), 'p90': round(percentile(latencies, 90), 1),
                           'max': round(max(latencies), 1), 'samples': LATENCY_SAMPLES},
        }
        self.record['celery'][label] = result
        log(f'celery {label}: concurrency {concurrency}, {result["tasks_per_s"]} tasks/s, '
            f'round trip p50 {result["latency_ms"]["p50"]} ms')
        return result

    def _task_round_trip(self) -> float:
        """Milliseconds from enqueueing a 0 ms task over HTTPS to reading its SUCCESS over HTTPS (polled every 5 ms)."""
        start = time.monotonic()
        status, body = self.web.request('POST', '/tasks/wait?ms=0')
        if status != 202:
            raise BenchError(f'POST /tasks/wait answered {status}: {body}')
        task_id = body['task_ids'][0]
        while True:
            status, body = self.web.request('GET', f'/tasks/{task_id}')
            if body.get('state') == 'SUCCESS':
                return (time.monotonic() - start) * 1000.0
            if body.get('state') in ('FAILURE', 'REVOKED') or time.monotonic() - start > 60:
                raise BenchError(f'task {task_id}: {body}')
            time.sleep(0.005)

    def _task_batch(self, label: str) -> tuple:
        """(seconds from the enqueueing request to the last task's date_done, seconds the request took) for a batch
        enqueued over HTTPS in one request; the results are read from the result backend on the host."""
        start = time.time()
        status, body = self.web.request('POST', f'/tasks/wait?ms={CELERY_TASK_MS}&count={CELERY_BATCH}')
        if status != 202:
            raise BenchError(f'POST /tasks/wait (batch) answered {status}: {body}')
        enqueued = time.time() - start
        out = self._on_host(f'{VENV}/bin/python -c {shlex.quote(_CELERY_WAIT)} {ENV_FILE} 300',
                            timeout=400, stdin=json.dumps(body['task_ids']))
        done = json.loads(out.splitlines()[-1])
        finished = [when for state, when in done.values() if state == 'SUCCESS' and when]
        if len(finished) < CELERY_BATCH:
            raise BenchError(f'celery {label}: {len(finished)} of {CELERY_BATCH} tasks succeeded')
        return max(finished) - start, enqueued

    def _celery_concurrency(self) -> int:
        """The live worker's --concurrency, from its unit."""
        exec_start = self._on_host(f'systemctl show -P ExecStart {CELERY_UNIT}')
        match = re.search(r'--concurrency (\d+)', exec_start)
        if not match:
            raise BenchError(f'no --concurrency in {CELERY_UNIT}: {exec_start}')
        return int(match.group(1))

    def phase_defaults(self) -> None:
        """Gunicorn's defaults (one sync worker) and Celery at concurrency 1, in one converge."""
        config = self._converge_gunicorn('defaults', {'gunicorn_worker_class': 'sync', 'gunicorn_workers': 1},
                                         also_celery={'celery_concurrency': 1})
        self.celery_round('concurrency-1')
        begun = self._memory_begin()
        self.measure([{'key': 'io_defaults_nginx', 'label': "Gunicorn's defaults", 'path': f'/io?ms={IO_WAIT_MS}',
                       'config': describe(config)}])
        self._memory_end('defaults', begun)

    def phase_cpu_plan(self) -> None:
        """The plan for the CPU-bound app through nginx, beside every direct configuration worth trying (the best
        one is the yardstick). The cpu plan is 2 x vCPUs + 1 sync workers on most hosts: then it is also the
        I/O table's 2n+1 row; otherwise that one gets its own converge."""
        config = self._converge_gunicorn('cpu-plan', {'gunicorn_workload': 'cpu'})
        n = self.found['nproc']
        same = config['worker_class'] == 'sync' and config['workers'] == 2 * n + 1
        self.record['configurations']['cpu-plan']['same_as_2n1_sync'] = same
        cpu = f'/cpu?n={self.found["cpu_n"]}'
        # Straight to Gunicorn as configured by hand: no worker recycling (Gunicorn's default max_requests 0).
        specs = [{'key': 'cpu_plan_nginx', 'label': 'plan (gunicorn_workload: cpu)', 'path': cpu, 'config': describe(config)}]
        if same:
            specs.append({'key': 'io_sync2n1_nginx', 'label': '2 x vCPUs + 1 sync (the cpu plan here)',
                          'path': f'/io?ms={IO_WAIT_MS}', 'config': describe(config)})
        for key, label, worker_class, workers, threads in (
                ('cpu_direct_sync1', "Gunicorn's defaults", 'sync', 1, 1),
                ('cpu_direct_syncn', 'one sync worker per vCPU', 'sync', n, 1),
                ('cpu_direct_sync2n1', '2 x vCPUs + 1 sync', 'sync', 2 * n + 1, 1),
                ('cpu_direct_gthread', 'gthread, vCPUs + 1 workers x 4 threads', 'gthread', n + 1, 4),
                ('cpu_direct_gevent', 'gevent, one worker per vCPU', 'gevent', n, 1)):
            name = f'{workers} {worker_class}' + (f' x {threads} threads' if worker_class == 'gthread' else '')
            specs.append({'key': key, 'label': label, 'path': cpu, 'config': name,
                          'direct': {'worker_class': worker_class, 'workers': workers, 'threads': threads, 'max_requests': 0}})
        begun = self._memory_begin()
        self.measure(specs)
        self._memory_end('cpu-plan', begun)
        if not same:
            config = self._converge_gunicorn('sync-2n1', {'gunicorn_worker_class': 'sync', 'gunicorn_workers': 2 * n + 1})
            begun = self._memory_begin()
            self.measure([{'key': 'io_sync2n1_nginx', 'label': '2 x vCPUs + 1 sync', 'path': f'/io?ms={IO_WAIT_MS}',
                           'config': describe(config)}])
            self._memory_end('sync-2n1', begun)

    # ------------------------------------------------------------- all

    def main(self, phases: list) -> int:
        """Every phase, then the record and the table, even after a failure (what was measured is kept)."""
        OUT.mkdir(parents=True, exist_ok=True)
        failed = None
        try:
            self.record['machine'] = self._machine()
            if 'converge' in phases:
                self.phase_converge()
            if {'io', 'celery', 'defaults', 'cpu'} & set(phases):
                if not self.opts.client:
                    raise BenchError(f'phases {",".join(phases)} need the client container (--client)')
                self.calibrate_cpu()
            if 'io' in phases:
                self.phase_io_plan()
            if 'celery' in phases:
                self.celery_round('plan')
            if 'defaults' in phases:
                self.phase_defaults()
            if 'cpu' in phases:
                self.phase_cpu_plan()
        except (BenchError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
            failed = f'{type(exc).__name__}: {exc}'
            log(f'FAILED: {failed}')
        finally:
            self._direct_stop_quietly()
            self.web.close()
        self.record['machine']['load_after'] = [round(x, 2) for x in os.getloadavg()]
        self.record['finished'] = utc_now()
        if failed:
            self.record['error'] = failed
        self.record['targets'] = targets(self.record)
        self.record['table'] = render(self.record)
        text = json.dumps(self.record, indent=2, sort_keys=True) + '\n'
        path = OUT / f'bench-{self.stamp}.json'
        path.write_text(text, encoding='utf-8')
        (OUT / 'latest.json').write_text(text, encoding='utf-8')
        print(self.record['table'])
        print(f'\nRecord: {path.relative_to(ROOT)} (and .cache/bench/latest.json); playbook output: {self.run_dir.relative_to(ROOT)}/')
        return 1 if failed else 0

    def _direct_stop_quietly(self) -> None:
        """direct_stop on the way out, whatever state the host is in."""
        try:
            self._direct_stop()
        except (BenchError, OSError, subprocess.TimeoutExpired):
            pass


# ------------------------------------------------------------ summaries

def _action(result: dict) -> str:
    """The short name of a result's action (ansible.builtin.copy -> copy)."""
    return str(result.get('action', '')).rsplit('.', 1)[-1]


def _on_controller(result: dict) -> bool:
    """Whether a task was delegated to the controller (a local connection)."""
    delegated = result.get('_ansible_delegated_vars') or {}
    return delegated.get('ansible_connection') == 'local' or delegated.get('ansible_delegated_host') in ('localhost', '127.0.0.1')


def summarize_playbook(report: dict, host: str) -> dict:
    """Stats of one host, the module runs on it (loop items counted, controller-only actions not), the slowest tasks."""
    stats = report.get('stats', {}).get(host, {})
    module_runs = 0
    controller_runs = 0
    durations = []
    failed_tasks = []
    for play in report.get('plays', []):
        for task in play.get('tasks', []):
            result = task.get('hosts', {}).get(host)
            if result is None:
                continue
            if result.get('failed') or result.get('unreachable'):
                failed_tasks.append({'task': task['task']['name'], 'msg': str(result.get('msg', ''))[:500]})
            if result.get('skipped'):
                continue
            items = [item for item in result.get('results', []) if isinstance(item, dict)] if 'results' in result else [result]
            runs = sum(1 for item in items if not item.get('skipped'))
            if _action(result) in CONTROLLER_ACTIONS or _on_controller(result):
                controller_runs += runs
            else:
                module_runs += runs
            duration = task['task'].get('duration', {})
            if duration.get('start') and duration.get('end'):
                seconds = (_parse_time(duration['end']) - _parse_time(duration['start'])).total_seconds()
                durations.append((round(seconds, 2), task['task']['name']))
    durations.sort(reverse=True)
    return {
        'ok': stats.get('ok', 0), 'changed': stats.get('changed', 0), 'skipped': stats.get('skipped', 0),
        'failed': stats.get('failures', 0), 'task_results': stats.get('ok', 0) + stats.get('skipped', 0) + stats.get('failures', 0),
        'module_runs': module_runs, 'controller_runs': controller_runs,
        'task_seconds': round(sum(seconds for seconds, _name in durations), 1),
        'slowest_tasks': [{'seconds': seconds, 'task': name} for seconds, name in durations[:8]],
        'failed_tasks': failed_tasks,
    }


# What a remote exec is, as the record states it (docs/bench.md says more).
EXEC_COUNTING = (
    'A remote exec is one process the connection plugin starts on the host for the run. Counted from the '
    "connection's -vvv lines for the host (an extra untimed -vvv run after the timed reruns; the fresh runs log them "
    'to a file, ANSIBLE_LOG_VERBOSITY=3): containers.podman.podman logs "<host> EXEC: <command>" once per podman exec; '
    'community.docker.docker_api "<host> EXEC <command>"; ansible.builtin.ssh "<address> SSH: EXEC ssh ..." per '
    'command and "SSH: EXEC sftp|scp ..." per file transfer, each a session of its own on the host (sftp-server), '
    'so counted too. A PUT or FETCH of the container connections copies through the container\'s mount or podman '
    'cp, not an exec in the host: listed, not counted. Tasks run on the controller (set_fact, assert, delegated to '
    'localhost) make no remote exec.'
)

# "<host> EXEC: ..." (podman), "<host> EXEC ..." (docker_api, local), "<host> SSH: EXEC ssh|sftp|scp ...",
# "<host> PUT ..." and "<host> FETCH ..."; at the start of a line of -vvv output, or after the "| " of a log line.
_EXEC_LINE = re.compile(r'(?:^|\| )<(?P<address>[^>\n]+)> (?:SSH: EXEC (?P<program>\S+)|(?P<kind>EXEC|PUT|FETCH)[: ])',
                        re.MULTILINE)


def count_execs(text: str, address: str) -> dict:
    """The connection's remote execs for one host in -vvv output or an Ansible log: commands, file-transfer sessions
    (SSH's sftp or scp), and the PUT and FETCH lines (a container connection's copies are not execs)."""
    found = {'commands': 0, 'transfer_sessions': 0, 'puts': 0, 'fetches': 0}
    for match in _EXEC_LINE.finditer(text):
        if match.group('address') != address:
            continue
        program = match.group('program')
        if program is not None:
            name = program.rsplit('/', 1)[-1]
            if name in ('sftp', 'scp'):
                found['transfer_sessions'] += 1
            elif name in ('ssh', 'sshpass'):
                found['commands'] += 1
        elif match.group('kind') == 'EXEC':
            found['commands'] += 1
        elif match.group('kind') == 'PUT':
            found['puts'] += 1
        else:
            found['fetches'] += 1
    found['remote_execs'] = found['commands'] + found['transfer_sessions']
    found['address'] = address
    return found


def aggregate(runs: list) -> dict:
    """The median of each rate and percentile over the runs of one load; errors and requests summed."""
    result = {'runs': runs, 'requests': sum(run['requests'] for run in runs), 'seconds': round(sum(run['seconds'] for run in runs), 2)}
    for field in ('rps', 'p50_ms', 'p75_ms', 'p90_ms', 'p99_ms', 'max_ms', 'machine_busy_pct', 'host_cpu_ms_per_request',
                  'client_cpu_ms_per_request', 'bench_share_of_machine_pct'):
        values = [run[field] for run in runs if run.get(field) is not None]
        result[field] = round(statistics.median(values), 2) if values else None
    result['non_2xx_3xx'] = sum(run['non_2xx_3xx'] for run in runs)
    result['socket_errors'] = {kind: sum(run['socket_errors'][kind] for run in runs) for kind in ('connect', 'read', 'write', 'timeout')}
    result['errors'] = result['non_2xx_3xx'] + sum(result['socket_errors'].values())
    return result


def _parse_time(text: str) -> datetime.datetime:
    """A callback timestamp (2026-11-30T15:25:19.110883Z) as an aware datetime."""
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def describe(config: dict) -> str:
    """A Gunicorn configuration in a few words: 2 gevent, 3 gthread x 4 threads."""
    text = f'{config["workers"]} {config["worker_class"]}'
    if config['worker_class'] == 'gthread':
        text += f' x {config["threads"]} threads'
    return text


def _load(record: dict, key: str) -> dict:
    """One load's aggregate, or an empty dict when it was not measured."""
    return record['loads'].get(key) or {}


def _ratio(top, bottom, digits=2):
    """top / bottom, rounded; None when either is missing."""
    if top is None or not bottom:
        return None
    return round(top / bottom, digits)


def _target(name: str, value, goal: str, met: bool) -> dict:
    return {'target': name, 'value': value, 'goal': goal, 'met': met if value is not None else None}


def _io_targets(record: dict) -> list:
    plan = _load(record, 'io_plan_nginx')
    share = _ratio(plan.get('rps'), record['settings']['connections'] * 1000.0 / IO_WAIT_MS, 3)
    defaults = _ratio(plan.get('rps'), _load(record, 'io_defaults_nginx').get('rps'), 1)
    sync = _ratio(plan.get('rps'), _load(record, 'io_sync2n1_nginx').get('rps'), 1)
    p99 = plan.get('p99_ms')
    return [
        _target('I/O plan: share of the concurrency limit (connections / wait)', share, '>= 0.90', share is not None and share >= 0.90),
        _target("I/O plan vs Gunicorn's defaults (1 sync worker)", defaults, '>= 50x', defaults is not None and defaults >= 50),
        _target('I/O plan vs 2 x vCPUs + 1 sync workers', sync, '>= 10x', sync is not None and sync >= 10),
        _target('I/O plan: p99 latency (ms)', p99, f'<= {3 * IO_WAIT_MS} (3x the wait)', p99 is not None and p99 <= 3 * IO_WAIT_MS),
    ]


def _cpu_targets(record: dict) -> list:
    direct = {key: value for key, value in record['loads'].items() if key.startswith('cpu_direct_')}
    best = direct[max(direct, key=lambda key: direct[key]['rps'])] if direct else {}
    plan = _load(record, 'cpu_plan_nginx')
    ratio = _ratio(plan.get('rps'), best.get('rps'), 3)
    sync = _load(record, 'cpu_direct_sync2n1').get('p99_ms')
    p99 = plan.get('p99_ms')
    return [
        _target(f'CPU plan through nginx vs the best direct configuration ({best.get("configuration", "-")})',
                ratio, '>= 0.95x', ratio is not None and ratio >= 0.95),
        _target('CPU plan through nginx: p99 (ms) vs 2 x vCPUs + 1 sync direct', p99,
                f'<= {sync}' if sync is not None else '<= 2n+1 sync direct', p99 is not None and sync is not None and p99 <= sync),
    ]


def targets(record: dict) -> list:
    """Each target of the issue: value, goal, met (None: not measured)."""
    phases = set(str(record['settings'].get('phases', 'converge,io,celery,defaults,cpu')).split(','))
    # The loads' targets when loads were asked for (FLASKFLEET_BENCH_PHASES=converge runs none).
    found = _io_targets(record) + _cpu_targets(record) if phases & {'io', 'defaults', 'cpu'} else []
    converge = record.get('converge', {})
    changed = converge.get('rerun_changed')
    found.append(_target('Web host rerun: changed tasks', changed, '0', changed == 0))
    found += [_target(row['target'], row['value'], row['goal'], row['met']) for row in converge_ratios(record)
              if row['goal'] != NO_GOAL]
    memory = record.get('memory', {})
    if memory:
        oom = sum(entry['oom_kills'] for entry in memory.values())
        found.append(_target('OOM kills in the Gunicorn unit during the loads', oom, '0', oom == 0))
        shares = [entry['peak_share_of_high'] for entry in memory.values() if entry.get('peak_share_of_high') is not None]
        worst = max(shares) if shares else None
        found.append(_target('Gunicorn unit memory peak / MemoryHigh (worst configuration)', worst, '< 1',
                             worst is not None and worst < 1))
    return found


# ---------------------------------------------------------------- table

def _num(value, digits=0, suffix=''):
    """A number for the table (- when missing)."""
    if value is None:
        return '-'
    if digits == 0:
        return f'{value:,.0f}{suffix}'
    return f'{value:,.{digits}f}{suffix}'


def _latency(value):
    """Milliseconds for the table, as seconds from 1000 ms."""
    if value is None:
        return '-'
    if value >= 1000:
        return f'{value / 1000:.2f} s'
    return f'{value:.1f} ms' if value < 100 else f'{value:.0f} ms'


def _row(cells):
    """One markdown table row."""
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def _errors(load):
    """A load's errors in words (0 when none)."""
    if not load:
        return '-'
    parts = []
    if load['non_2xx_3xx']:
        parts.append(f'{load["non_2xx_3xx"]} non-2xx')
    for kind, count in load['socket_errors'].items():
        if count:
            parts.append(f'{count} {kind}')
    return ', '.join(parts) if parts else '0'


def _render_machine(record: dict) -> list:
    machine = record.get('machine', {})
    settings = record['settings']
    lines = [f'### flaskfleet.stack bench, {record["started"][:16].replace("T", " ")} UTC', '',
             f'Machine: {machine.get("nproc", "?")} vCPUs ({machine.get("cpu_model", "?")}), '
             f'{machine.get("memory_mb", 0) / 1024:.1f} GiB, Linux {machine.get("kernel", "?")}, cgroup {machine.get("cgroup", "?")}; '
             f'load average {" / ".join(str(x) for x in machine.get("load_before", []))} before, '
             f'{" / ".join(str(x) for x in machine.get("load_after", []))} after. '
             + (f'{machine.get("engine", "")}, {machine.get("ansible", "")}, {machine.get("wrk", "wrk")}: '
                f'{settings["connections"]} connections, {settings["threads"]} threads, from a second container; each number is '
                f'the median of {settings["repeats"]} runs of {settings["duration_s"]} s (each after a {settings["warmup_s"]} s '
                'warm-up), interleaved with the other loads of its group.' if 'wrk' in machine else
                f'{machine.get("engine", "")}, {machine.get("ansible", "")}; phases: {settings.get("phases", "?")} '
                '(no loads).')]
    quiet = record.get('quiet', [])
    if quiet:
        calm = sum(1 for entry in quiet if entry['quiet'])
        lines += ['', f'Other work on the machine: before {calm} of {len(quiet)} rounds of measurement the CPUs were at most '
                  f'{settings["quiet_busy_pct"]:g} % busy (waited {sum(entry["waited_s"] for entry in quiet):.0f} s in all, '
                  f'budget {settings["quiet_budget_s"]:g} s); median CPU use before a round '
                  f'{statistics.median(entry["cpu_busy_pct"] for entry in quiet):.0f} %.']
    if record.get('error'):
        lines += ['', f'**The bench broke: {record["error"]}** (what follows is what was measured before)']
    return lines


def _render_io(record: dict) -> list:
    if not record.get('loads'):
        return []
    settings = record['settings']
    limit = settings['connections'] * 1000.0 / IO_WAIT_MS
    plan = _load(record, 'io_plan_nginx')
    lines = ['', f'I/O-bound endpoint, `GET /io?ms={IO_WAIT_MS}`, through nginx over HTTPS '
             f'(concurrency limit {settings["connections"]} / {IO_WAIT_MS / 1000:g} s = {limit:.0f} req/s):', '',
             _row(['configuration', 'Gunicorn', 'req/s', 'p50', 'p99', 'errors', 'share of limit', 'plan is']),
             _row(['---', '---', '---:', '---:', '---:', '---:', '---:', '---:'])]
    for key in ('io_plan_nginx', 'io_defaults_nginx', 'io_sync2n1_nginx'):
        load = record['loads'].get(key)
        if load:
            times = '' if key == 'io_plan_nginx' else _num(_ratio(plan.get('rps'), load['rps'], 1), 1, 'x')
            lines.append(_row([load['label'], load['configuration'], _num(load['rps']), _latency(load['p50_ms']),
                               _latency(load['p99_ms']), _errors(load), _num(100.0 * load['rps'] / limit, 1, ' %'), times]))
    return lines


def _render_cpu(record: dict) -> list:
    if not record.get('loads'):
        return []
    cpu = record.get('cpu_calibration', {})
    lines = ['', f'CPU-bound endpoint, `GET /cpu?n={cpu.get("n", "?")}` (about {_num(cpu.get("p20_ms"), 1)} ms of CPU '
             'each, measured one at a time):', '',
             _row(['configuration', 'Gunicorn', 'via', 'req/s', 'p50', 'p99', 'errors']),
             _row(['---', '---', '---', '---:', '---:', '---:', '---:'])]
    for key in ('cpu_plan_nginx', 'cpu_io_plan_nginx', 'cpu_direct_sync1', 'cpu_direct_syncn', 'cpu_direct_sync2n1',
                'cpu_direct_gthread', 'cpu_direct_gevent'):
        load = record['loads'].get(key)
        if load:
            lines.append(_row([load['label'], load['configuration'], load['via'], _num(load['rps']), _latency(load['p50_ms']),
                               _latency(load['p99_ms']), _errors(load)]))
    lines += ['', "nginx's cost (the same Gunicorn configuration, HTTPS through nginx vs plain HTTP straight to Gunicorn):", '',
              _row(['endpoint', 'Gunicorn', 'through nginx', 'direct', 'nginx / direct', 'p99 nginx', 'p99 direct']),
              _row(['---', '---', '---:', '---:', '---:', '---:', '---:'])]
    for endpoint, via_nginx, direct in (('/io (I/O plan)', 'io_plan_nginx', 'io_plan_direct'),
                                        ('/cpu (CPU plan)', 'cpu_plan_nginx', 'cpu_direct_sync2n1')):
        first, second = record['loads'].get(via_nginx), record['loads'].get(direct)
        if first and second:
            lines.append(_row([endpoint, first['configuration'], _num(first['rps']), _num(second['rps']),
                               _num(_ratio(first['rps'], second['rps'], 2), 2, 'x'), _latency(first['p99_ms']),
                               _latency(second['p99_ms'])]))
    return lines


def _render_cpu_use(record: dict) -> list:
    nproc = record.get('machine', {}).get('host_nproc') or record.get('machine', {}).get('nproc') or 1
    rows = []
    for key in ('io_plan_nginx', 'io_plan_direct', 'cpu_plan_nginx', 'cpu_direct_sync2n1', 'cpu_io_plan_nginx'):
        load = record['loads'].get(key)
        if not load or load.get('host_cpu_ms_per_request') is None:
            continue
        per_request = load['host_cpu_ms_per_request'] + load['client_cpu_ms_per_request']
        rows.append(_row([f'{load["label"]}, {load["via"]}', _num(load['rps']), _num(load['host_cpu_ms_per_request'], 2, ' ms'),
                          _num(load['client_cpu_ms_per_request'], 2, ' ms'), _num(nproc * 1000.0 / per_request if per_request else None),
                          _num(load['machine_busy_pct'], 0, ' %'), _num(load['bench_share_of_machine_pct'], 0, ' %')]))
    if not rows:
        return []
    return ['', f'Where the CPU went (CPU time of the host container and of wrk\'s container per request; what {nproc} idle '
            'vCPUs could carry at that cost; how busy the machine was and how much of its CPU time the bench got):', '',
            _row(['load', 'req/s', 'host CPU / req', 'wrk CPU / req', f'ceiling on {nproc} idle vCPUs', 'machine busy',
                  'bench\'s share']),
            _row(['---', '---:', '---:', '---:', '---:', '---:', '---:'])] + rows


def _render_celery(record: dict) -> list:
    celery = record.get('celery', {})
    if not celery:
        return []
    lines = ['', f'Celery through Redis: {CELERY_BATCH} tasks of {CELERY_TASK_MS} ms enqueued in one request, timed until '
             'the last one is stored; round trip of a 0 ms task (enqueued over HTTPS, polled until SUCCESS):', '',
             _row(['worker', 'concurrency', 'tasks/s', 'of ideal', 'round trip p50', 'p90']),
             _row(['---', '---:', '---:', '---:', '---:', '---:'])]
    for label in ('plan', 'concurrency-1'):
        entry = celery.get(label)
        if entry:
            lines.append(_row(['plan (celery_concurrency: null)' if label == 'plan' else 'celery_concurrency: 1',
                               entry['concurrency'], _num(entry['tasks_per_s'], 1),
                               _num(100.0 * entry['tasks_per_s'] / entry['ideal_tasks_per_s'], 0, ' %'),
                               _latency(entry['latency_ms']['p50']), _latency(entry['latency_ms']['p90'])]))
    if celery.get('plan') and celery.get('concurrency-1'):
        ratio = _ratio(celery['plan']['tasks_per_s'], celery['concurrency-1']['tasks_per_s'], 1)
        lines += ['', f'Planned concurrency vs 1: {ratio}x the tasks per second.']
    return lines


NO_GOAL = 'none set'


def _execs(entry) -> int | None:
    """The remote execs of a count (None when not counted)."""
    return (entry or {}).get('remote_execs')


def converge_ratios(record: dict) -> list:
    """The converge rows the issue asks for: each rerun and fresh time against the plain-task baseline's, and the
    remote execs of the reruns, with the issue's goals (met: None when not measured or no goal)."""
    converge = record.get('converge', {})
    stack = converge.get('whole_stack', {})
    ssh = converge.get('ssh', {})
    connection = converge.get('connection', 'container')
    rows = []

    def add(name, value, goal, limit, suffix=''):
        met = None if value is None or limit is None else value <= limit
        rows.append({'target': name, 'value': value, 'goal': goal, 'met': met, 'suffix': suffix})

    add(f'Web host rerun / plain-task baseline rerun ({connection})', converge.get('rerun_ratio'),
        f'<= {RERUN_RATIO_GOAL}x', RERUN_RATIO_GOAL, 'x')
    add('Web host rerun / plain-task baseline rerun (ansible.builtin.ssh)', ssh.get('rerun_ratio'),
        f'<= {RERUN_RATIO_GOAL}x', RERUN_RATIO_GOAL, 'x')
    add(f'Web host fresh / plain-task baseline fresh ({connection})', converge.get('fresh_ratio'),
        f'<= {FRESH_RATIO_GOAL}x', FRESH_RATIO_GOAL, 'x')
    add(f'Whole-stack host rerun / the same plain-task baseline\'s rerun ({connection})', stack.get('rerun_ratio'),
        NO_GOAL, None, 'x')
    add(f'Web host rerun: remote execs ({connection})', _execs(converge.get('rerun_execs')),
        f'<= {WEB_RERUN_EXECS_GOAL}', WEB_RERUN_EXECS_GOAL)
    add('Web host rerun: remote execs (ansible.builtin.ssh)', _execs(ssh.get('rerun_execs')),
        f'<= {WEB_RERUN_EXECS_GOAL}', WEB_RERUN_EXECS_GOAL)
    add(f'Whole-stack host rerun: remote execs ({connection})', _execs(stack.get('rerun_execs')),
        f'<= {STACK_RERUN_EXECS_GOAL}', STACK_RERUN_EXECS_GOAL)
    return rows


def _seconds(value) -> str:
    return '-' if value is None else f'{value:.0f} s'


def _converge_row(name: str, playbook: str, seconds, runs: list, execs: dict | None) -> str:
    """One row of the converge table: the median seconds, the remote execs, what the (last) run did."""
    last = runs[-1] if runs else {}
    changed = max(run['changed'] for run in runs) if runs else '-'
    exec_cell = '-' if not execs else str(execs['remote_execs'])
    if execs and execs.get('transfer_sessions'):
        exec_cell += f' (incl. {execs["transfer_sessions"]} sftp/scp)'
    elif execs and execs.get('puts'):
        exec_cell += f' (+ {execs["puts"]} PUT, not execs)'
    return _row([name, playbook, _seconds(seconds), exec_cell, changed,
                 f'{last["ok"]} / {last["skipped"]}' if last else '-', last.get('module_runs', '-')])


def _render_converge(record: dict) -> list:
    converge = record.get('converge', {})
    if not converge.get('fresh'):
        return []
    web = f'site.yml --tags {WEB_TAGS}'
    base = 'tools/bench/baseline.yml'
    reruns = len(converge.get('reruns', []))
    lines = ['', f'Converge of the bench host ({converge.get("connection")} unless said; the same host for every row). '
             f'The reruns go in {reruns} round{"" if reruns == 1 else "s"} (web host, plain-task baseline {base}, whole-stack host; over SSH: web host, '
             'baseline), and the medians are compared. Remote execs (docs/bench.md): processes the connection started on '
             'the host, from its -vvv lines: for a rerun, one more untimed run with -vvv; for a fresh run, the timed run '
             'itself (its -vvv lines to a log file). Changed: the most of any timed run of the row.', '',
             _row(['run', 'playbook', 'seconds', 'remote execs', 'changed', 'tasks (ok / skipped)', 'module runs']),
             _row(['---', '---', '---:', '---:', '---:', '---:', '---:']),
             _converge_row('web host, fresh', web, converge['fresh']['seconds'], [converge['fresh']],
                           converge['fresh'].get('execs')),
             _converge_row('plain-task baseline, fresh', base, converge['baseline_fresh']['seconds'],
                           [converge['baseline_fresh']], converge['baseline_fresh'].get('execs'))]
    if converge.get('reruns'):
        lines += [_converge_row('web host, rerun', web, converge['rerun_s'], converge['reruns'], converge.get('rerun_execs')),
                  _converge_row('plain-task baseline, rerun', base,
                                converge['baseline_rerun_s'], converge['baseline_reruns'], converge.get('baseline_rerun_execs'))]
    first = converge.get('rest_of_stack')
    if first:
        lines.append(_converge_row('rest of the stack, first run (Redis, Celery, Loki, Promtail)', 'site.yml (no tags)',
                                   first['seconds'], [first], first.get('execs')))
    stack = converge.get('whole_stack', {})
    if stack.get('reruns'):
        lines.append(_converge_row('whole-stack host, rerun (against the same baseline reruns)', 'site.yml (no tags)',
                                   stack['rerun_s'], stack['reruns'], stack.get('rerun_execs')))
    ssh = converge.get('ssh', {})
    if ssh.get('reruns'):
        lines += [_converge_row('web host over SSH, rerun', web, ssh['rerun_s'], ssh['reruns'], ssh.get('rerun_execs')),
                  _converge_row('plain-task baseline over SSH, rerun', base, ssh['baseline_rerun_s'],
                                ssh['baseline_reruns'], ssh.get('baseline_rerun_execs'))]
    if ssh.get('skipped'):
        lines += ['', f'Over SSH: not measured ({ssh["skipped"]}).']
    elif ssh.get('reruns'):
        lines += ['', f'Over SSH: ansible.builtin.ssh to {ssh["address"]}:22 as root, pipelining on, ssh_args '
                  f'`{ssh["ssh_args"]}`, the master connection opened before the timed runs.']
    # Measured values only: the goals and whether they are met are in the Targets table (targets()).
    lines += ['', 'Against the baseline:', '', _row(['row', 'measured']), _row(['---', '---:'])]
    for row in converge_ratios(record):
        lines.append(_row([row['target'], '-' if row['value'] is None else f'{row["value"]}{row["suffix"]}']))
    return lines


def _render_memory(record: dict) -> list:
    memory = record.get('memory', {})
    if not memory:
        return []
    lines = ['', 'Memory of the Gunicorn unit under these loads (peak of its cgroup):', '',
             _row(['configuration', 'peak', 'MemoryHigh', 'MemoryMax', 'OOM kills']),
             _row(['---', '---:', '---:', '---:', '---:'])]
    for label, entry in memory.items():
        lines.append(_row([label, _num(entry['peak_mb'], 0, ' MB'), _num(entry['memory_high_mb'], 0, ' MB'),
                           _num(entry['memory_max_mb'], 0, ' MB'), entry['oom_kills']]))
    return lines


def render(record: dict) -> str:
    """The record as markdown: the machine, one table per part, the targets."""
    lines = _render_machine(record) + _render_io(record) + _render_cpu(record) + _render_cpu_use(record) + _render_celery(record)
    lines += _render_converge(record) + _render_memory(record)
    lines += ['', 'Targets:', '', _row(['target', 'measured', 'goal', 'met']), _row(['---', '---:', '---:', '---'])]
    for target in record.get('targets', []):
        met = {True: 'yes', False: '**no**', None: 'not measured'}[target['met']]
        lines.append(_row([target['target'], '-' if target['value'] is None else target['value'], target['goal'], met]))
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Command line: the containers come from tools/harness/bench.sh."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--cli', default=os.environ.get('FLASKFLEET_ENGINE_CLI', 'podman'))
    parser.add_argument('--host', default='flaskfleet-bench')
    parser.add_argument('--client', default='flaskfleet-bench-client')
    parser.add_argument('--ip', required=True, help='the host container address on the bench network')
    parser.add_argument('--duration', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_DURATION', '10')))
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--connections', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--reruns', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_RERUNS', '3')),
                        help='timed reruns of each playbook, each followed by a baseline rerun; the medians are compared')
    parser.add_argument('--repeats', type=int, default=int(os.environ.get('FLASKFLEET_BENCH_REPEATS', '2')),
                        help='measured runs of each load, interleaved with the others of its group; the median is kept')
    parser.add_argument('--quiet-busy', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_BUSY', '40')),
                        help='before each round of loads, wait until the CPUs are at most this busy (percent) ...')
    parser.add_argument('--quiet-wait', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_WAIT', '90')),
                        help='... for at most this many seconds each time (then measure anyway, and say so) ...')
    parser.add_argument('--quiet-budget', type=float, default=float(os.environ.get('FLASKFLEET_BENCH_QUIET_BUDGET', '180')),
                        help='... and this many in all')
    parser.add_argument('--phases', default=os.environ.get('FLASKFLEET_BENCH_PHASES', 'converge,io,celery,defaults,cpu'),
                        help='comma-separated: converge alone (no client needed), or the loads too (development: skip '
                        'converge on a host already converged)')
    parser.add_argument('--ssh-host', default='', help="the host's sshd address for the SSH rows (none: not measured)")
    parser.add_argument('--ssh-key', default=str(OUT / 'ssh' / 'id_ed25519'))
    parser.add_argument('--ssh-known-hosts', default=str(OUT / 'ssh' / 'known_hosts'))
    args = parser.parse_args(argv)
    if args.reruns < 1:
        parser.error('--reruns must be at least 1')
    return Bench(args).main([phase.strip() for phase in args.phases.split(',') if phase.strip()])


if __name__ == '__main__':
    sys.exit(main())
