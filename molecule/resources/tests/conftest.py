# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for the Molecule scenarios' testinfra tests.

Hosts are reached through the container engine's CLI (``podman exec`` or
``docker exec``), not through Ansible: one exec per command instead of one
module run. The instance list comes from Molecule's inventory.
"""
from __future__ import annotations

import http.client
import json
import os
import resource
import pathlib
import shutil
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
import testinfra
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
# The checkout as the flaskfleet.stack collection (made by `make deps`).
sys.path.insert(0, str(ROOT / ".cache" / "self"))

SITE_NAME = "app.example.test"
APP = "app"
SERVICE = f"gunicorn-{APP}"
# The supervision backend the scenario converged with (molecule.yml verifier env).
SUPERVISOR = os.environ.get("FLASKFLEET_SUPERVISOR", "systemd")
# Under supervisord, the kernel's hard limit is supervisord's own unit.
CAPPED_UNIT = SERVICE if SUPERVISOR == "systemd" else "supervisor.service"
SUPERVISORD_OVERHEAD_MB = 128


def group_hosts(group="all"):
    """The Molecule instances in an inventory group, sorted."""
    path = os.environ["MOLECULE_INVENTORY_FILE"]
    with open(path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    return sorted((inventory.get(group) or {}).get("hosts") or {})


# The fault suite (tests marked `fault`): `make faults` sets FLASKFLEET_FAULTS=full
# and runs those alone at full size (a longer Loki outage, more tasks queued);
# in `make test` they run at short size among the others.
FAULTS_FULL = os.environ.get("FLASKFLEET_FAULTS") == "full"
FAULT_ROWS = []


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: a fault of the fault suite; records what it measured (record_fault)")


def pytest_collection_modifyitems(config, items):
    # The consumer test (test_consumer.py) converges the host with another
    # repository's settings: it runs after every other test.
    items.sort(key=lambda item: item.path.name == "test_consumer.py")
    if FAULTS_FULL:
        others = [item for item in items if not item.get_closest_marker("fault")]
        config.hook.pytest_deselected(items=others)
        items[:] = [item for item in items if item.get_closest_marker("fault")]


def scenario_name():
    """The Molecule scenario the tests run against (from its inventory's path when the variable is unset)."""
    name = os.environ.get("MOLECULE_SCENARIO_NAME")
    if name:
        return name
    return pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parents[1].name.rsplit(".", 1)[-1]


def record_fault(fault, **measured):
    """One row of the fault table: what a fault test injected and what it measured."""
    row = {"fault": fault, "backend": SUPERVISOR, "scenario": scenario_name(), **measured}
    FAULT_ROWS.append(row)
    print("fault " + json.dumps(row, sort_keys=True))


def cpu_seconds():
    """User + system seconds of this pytest and every process it has waited for (ansible-playbook, engine execs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


TEST_CPU = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
    # Each test's CPU seconds, its fixtures' converges included: the suite's cost is the controller's CPU.
    before = cpu_seconds()
    yield
    TEST_CPU[item.nodeid] = cpu_seconds() - before


def pytest_terminal_summary(terminalreporter):
    if not TEST_CPU:
        return
    terminalreporter.section("most CPU (this pytest and what it ran, user + system)")
    for nodeid, cpu in sorted(TEST_CPU.items(), key=lambda kv: -kv[1])[:15]:
        terminalreporter.write_line(f"{cpu:7.1f} s  {nodeid}")
    terminalreporter.write_line(f"{cpu_seconds():7.1f} s  in all ({len(TEST_CPU)} tests)")


def pytest_sessionfinish(session):  # pylint: disable=unused-argument
    # The rows of this run, for `make faults`' table (tools/faults/report.py).
    if not FAULT_ROWS:
        return
    out = ROOT / ".cache" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    size = "full" if FAULTS_FULL else "short"
    (out / f"{scenario_name()}-{size}.json").write_text(
        json.dumps({"scenario": scenario_name(), "backend": SUPERVISOR, "size": size,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": FAULT_ROWS}, indent=2) + "\n")


def pytest_generate_tests(metafunc):
    # `instance`: each web host (the tests of the web stack); `any_instance`: every host.
    if "instance" in metafunc.fixturenames:
        metafunc.parametrize("instance", group_hosts("flask_web"), scope="module")
    if "any_instance" in metafunc.fixturenames:
        metafunc.parametrize("any_instance", group_hosts(), scope="module")


def engine_cli():
    return os.environ.get("FLASKFLEET_ENGINE_CLI", "docker")


@pytest.fixture(scope="module")
def host(instance):
    """A testinfra host for one Molecule instance."""
    return testinfra.get_host(f"{engine_cli()}://{instance}")


def ansible_run(args, check=True):
    """Run an ansible CLI (ansible, ansible-playbook) against Molecule's inventory."""
    env = dict(os.environ, ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_NOCOLOR="1")
    cmd = [args[0], "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args[1:]]
    return subprocess.run(cmd, env=env, check=check, capture_output=True, text=True, cwd=ROOT)


def gather_facts(instance):
    """An instance's ansible_facts, gathered by Ansible's setup module."""
    out = ansible_run(["ansible", instance, "-m", "ansible.builtin.setup", "-o"]).stdout
    gathered = json.loads(out.split("=>", 1)[1])["ansible_facts"]
    # as plays see them in ansible_facts: without the ansible_ prefix
    return {key.removeprefix("ansible_"): value for key, value in gathered.items()}


@pytest.fixture(scope="module")
def facts(instance):
    """The instance's ansible_facts (see gather_facts)."""
    return gather_facts(instance)


@pytest.fixture(scope="module")
def published(instance):
    """Controller-side 127.0.0.1 ports of the instance's 80 and 443."""
    ports = {}
    for port in (80, 443):
        out = subprocess.run([engine_cli(), "port", instance, f"{port}/tcp"], check=True,
                             capture_output=True, text=True).stdout.split()[0]
        ports[port] = int(out.rsplit(":", 1)[1])
    return ports


def main_pid(host, backend=None):
    """PID of the Gunicorn master under the given (default: the scenario's) backend, '0' if none."""
    if (backend or SUPERVISOR) == "systemd":
        return host.check_output(f"systemctl show -P MainPID {SERVICE}")
    out = host.run(f"supervisorctl pid {SERVICE}").stdout.strip()
    return out if out.isdigit() else "0"


def gunicorn_workers(host):
    """PIDs of the Gunicorn master's workers: none while no master runs, or while a new one has not forked
    yet (a supervisor's restart is caught in between when polled)."""
    master = main_pid(host)
    if master == "0":
        return []
    found = host.run(f"pgrep -P {master}")
    assert found.rc in (0, 1), f"pgrep -P {master}: {found.stderr}"
    return found.stdout.split()


def masters(host):
    """PIDs of every Gunicorn master process on the host, whoever supervises it."""
    out = host.run("pgrep -f '^/srv/app/current/venv/bin/python /srv/app/current/venv/bin/gunicorn'").stdout.split()
    parents = {pid: host.check_output(f"ps -o ppid= -p {pid}").strip() for pid in out}
    return sorted(pid for pid, ppid in parents.items() if ppid not in parents)


def unit_cgroup_dir(host, unit, controller="memory"):
    """The kernel's cgroup directory of a unit's main process, v1 or v2."""
    pid = host.check_output(f"systemctl show -P MainPID {unit}")
    assert pid not in ("", "0"), f"{unit} has no main process"
    lines = host.file(f"/proc/{pid}/cgroup").content_string.splitlines()
    for line in lines:
        _hierarchy, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return f"/sys/fs/cgroup/{controller}{path}"
    for line in lines:
        if line.startswith("0::"):
            return "/sys/fs/cgroup" + line[3:]
    raise AssertionError(f"no {controller} cgroup for {unit}")


def unit_memory_limit(host, unit):
    """The memory limit, in bytes, that the kernel enforces for a unit."""
    cgdir = unit_cgroup_dir(host, unit)
    for name in ("memory.limit_in_bytes", "memory.max"):
        limit = host.file(f"{cgdir}/{name}")
        if limit.exists:
            return int(limit.content_string.strip())
    raise AssertionError(f"no memory limit file in {cgdir}")


def unit_oom_kills(host, unit):
    """How many processes the kernel OOM-killed in the unit's memory cgroup, counted in the
    kernel's log. Not the cgroup's own counter: when the kernel kills the main process too
    (a second kill before the first victim's memory is freed), systemd restarts the unit in a
    new cgroup whose counter starts again at 0."""
    cgdir = unit_cgroup_dir(host, unit)
    memcg = cgdir.removeprefix("/sys/fs/cgroup/memory") if cgdir.startswith("/sys/fs/cgroup/memory/") \
        else cgdir.removeprefix("/sys/fs/cgroup")
    log = host.run("dmesg")
    assert log.rc == 0, log.stderr
    return sum(1 for line in log.stdout.splitlines() if "oom-kill:" in line and f"oom_memcg={memcg}," in line)


def converge(instance, extra=None, *options):
    """Rerun the fleet playbook on one instance, with extra variables; returns the process (not checked)."""
    args = ["ansible-playbook", "molecule/resources/converge.yml", "--limit", instance, *options]
    if extra:
        args += ["-e", json.dumps(extra)]
    return ansible_run(args, check=False)


def curl_in(host, path, *options, scheme="https", name=SITE_NAME):
    """curl run inside the host against its own nginx, by name."""
    port = 443 if scheme == "https" else 80
    opts = " ".join(options)
    return host.run(f"curl -sS -k --max-time 20 --resolve {name}:{port}:127.0.0.1 {opts} " + shlex.quote(f"{scheme}://{name}{path}"))


def healthz_ok(host):
    """Whether the app answers 200 on /healthz through the host's own nginx."""
    return curl_in(host, "/healthz", "-o /dev/null", "-w '%{http_code}'").stdout == "200"


def wait_for(condition, timeout=60, every=0.25):
    """Seconds until condition() held (polled), or None when it never did within timeout."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return round(time.monotonic() - began, 2)
        time.sleep(every)
    return None


APP_STATIC = "src/flaskfleet_demo/static"
# Not shipped by default (flask_app_source_exclude), whatever the source holds.
EXCLUDED = (".git/config", ".env", "build/junk.txt", "src/flaskfleet_demo/__pycache__/stale.cpython-311.pyc")


def app_source(tmp_path, version, extra_static=None, healthz_status=None):
    """A copy of the demo app as a new release: its version, files a deploy must not ship, an extra static
    file, a /healthz that fails (healthz_status)."""
    source = tmp_path / f"app-{version}"
    shutil.copytree(ROOT / "demo" / "app", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    init = source / "src" / "flaskfleet_demo" / "__init__.py"
    code = init.read_text().replace('__version__ = "1.0.0"', f'__version__ = "{version}"')
    if healthz_status:
        code = code.replace('return jsonify(status="ok", pid=os.getpid())',
                            f'return jsonify(status="broken", pid=os.getpid()), {healthz_status}')
    init.write_text(code)
    for name in EXCLUDED:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("must not be shipped\n")
    if extra_static:
        (source / APP_STATIC / extra_static).write_text(f"{version}\n")
    return source


def release_vars(source):
    """The variables that point a run at an app source made by app_source."""
    return {"flask_app_source_dir": str(source), "flask_app_static_src": str(source / APP_STATIC)}


def published_port(instance, port=443):
    """The controller-side 127.0.0.1 port of an instance's port."""
    out = subprocess.run([engine_cli(), "port", instance, f"{port}/tcp"], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0].rsplit(":", 1)[1])


def https_get(port, path="/", timeout=10):
    """One request on a new connection, as a client would come: HTTPS to nginx
    through a published port, by the site's name; returns (status, body)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(SITE_NAME, port, timeout=timeout, context=context)
    # to 127.0.0.1, with the site's name as SNI (nginx refuses a handshake for names it does not serve)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout),
                                    server_hostname=SITE_NAME)
    try:
        conn.request("GET", path, headers={"Host": SITE_NAME})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Load:
    """A steady, bounded loop of requests from the controller to web hosts'
    published HTTPS ports until stopped (at most `limit` seconds). Every answer
    is kept with its time, so a test can count what failed after a fault and
    how long until the service answered again."""

    def __init__(self, ports, path="/healthz", limit=900, pause=0.05):
        self.ports, self.path, self.limit, self.pause = list(ports), path, limit, pause
        self.stop = threading.Event()
        self.counts = {port: [0, 0] for port in self.ports}  # served, failed
        self.failures = []  # (port, time, status)
        self.timeline = []  # (time, ok)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            for port in self.ports:
                try:
                    status, _body = https_get(port, self.path)
                    ok = status == 200
                except (OSError, http.client.HTTPException) as error:
                    status, ok = repr(error), False
                now = time.monotonic()
                self.timeline.append((now, ok))
                self.counts[port][0 if ok else 1] += 1
                if not ok:
                    self.failures.append((port, round(now, 1), status))
            time.sleep(self.pause)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def wait_requests(self, count, timeout=60):
        """Wait until `count` more answers came in (the loop runs and is counted)."""
        target, deadline = len(self.timeline) + count, time.monotonic() + timeout
        while len(self.timeline) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.timeline) >= target, f"the load loop got {len(self.timeline)} answers, not {target}"

    def summary(self, since):
        """Requests answered and failed after `since`, and seconds from `since` until
        the first success after the last failure (0 when nothing failed)."""
        after = [(stamp, ok) for stamp, ok in self.timeline if stamp >= since]
        failed = [stamp for stamp, ok in after if not ok]
        recovery = 0.0
        if failed:
            back = [stamp for stamp, ok in after if ok and stamp > failed[-1]]
            recovery = round((back[0] if back else float("inf")) - since, 2)
        return {"requests": len(after), "failed_requests": len(failed), "recovery_s": recovery}
