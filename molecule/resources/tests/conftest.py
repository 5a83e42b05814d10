# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for the Molecule scenarios' testinfra tests.

Hosts are reached through the container engine's CLI (``podman exec`` or
``docker exec``), not through Ansible: one exec per command instead of one
module run. The instance list comes from Molecule's inventory.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import shlex
import subprocess
import sys

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


def pytest_collection_modifyitems(items):
    # The consumer test (test_consumer.py) converges the host with another
    # repository's settings: it runs after every other test.
    items.sort(key=lambda item: item.path.name == "test_consumer.py")


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
    """How many processes the kernel OOM-killed in the unit's memory cgroup."""
    cgdir = unit_cgroup_dir(host, unit)
    for name in ("memory.oom_control", "memory.events"):
        stats = host.file(f"{cgdir}/{name}")
        if stats.exists:
            for line in stats.content_string.splitlines():
                key, _sep, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    raise AssertionError(f"no oom_kill counter in {cgdir}")


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
