# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Galaxy path: another repository's layout (tests/consumer) installs the
collection's tarball into an empty collections path and runs
flaskfleet.stack.site against this scenario's host, with its own inventory,
group_vars and app, and nothing of the checkout but the tarball.

Scenario supervisord (one host holds the whole stack). The consumer's settings
differ from the scenario's (its app's secret and environment, the Redis
password, default Celery limits), so its run changes the host: conftest runs
this module last.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest
import yaml
from flaskfleet_testlib.engine import instance_host
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.service import curl_in
from flaskfleet_testlib.stack import ROOT, SUPERVISOR

pytestmark = pytest.mark.skipif(SUPERVISOR != "supervisord", reason="scenario supervisord (one host, the whole stack)")

GROUPS = ("flask_web", "flask_workers", "redis", "loki")
# The collections it depends on, as the PyPI `ansible` package provides them
# (tools/harness/collections.sh): what a consumer has after `pip install ansible`.
DEPENDENCIES = ROOT / ".cache" / "collections"


def _env(infra):
    """The consumer's environment: no ANSIBLE_* or MOLECULE_* setting of this checkout's runs, and not its
    PYTHONPATH (`make test` puts a mirror of the checkout there, and Ansible finds collections on sys.path too)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "MOLECULE_")) and key != "PYTHONPATH"}
    env.update(ANSIBLE_HOME=str(infra / ".ansible"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=f"{infra / 'collections'}:{DEPENDENCIES}")
    return env


def _run(infra, *args, **extra_env):
    return subprocess.run(args, cwd=infra, env=_env(infra) | extra_env, capture_output=True, text=True, check=False)


def _recap(output):
    """The PLAY RECAP counters per host."""
    recap = {}
    for match in re.finditer(r"^(\S+)\s*:\s*(ok=.*)$", output.split("PLAY RECAP", 1)[-1], re.MULTILINE):
        recap[match[1]] = {key: int(value) for key, value in (item.split("=") for item in match[2].split())}
    return recap


@pytest.fixture(scope="module")
def infra(tmp_path_factory):
    """tests/consumer copied into a directory of its own, with the tarball and the app it deploys."""
    infra = tmp_path_factory.mktemp("consumer") / "infra"
    shutil.copytree(ROOT / "tests" / "consumer", infra)
    dist = infra / "dist"
    dist.mkdir()
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-galaxy"), "collection", "build", "--output-path", str(dist),
                          str(ROOT)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    (tarball,) = dist.glob("flaskfleet-stack-*.tar.gz")
    tarball.rename(dist / "flaskfleet-stack.tar.gz")
    shutil.copytree(ROOT / "demo" / "app", infra / "app",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    # The scenario's container, in each of the consumer's groups it is in here, reached as Molecule reaches it.
    with open(os.environ["MOLECULE_INVENTORY_FILE"], encoding="utf-8") as handle:
        molecule = yaml.safe_load(handle)
    hosts = {}
    for name in group_hosts():
        connection = molecule["all"]["hosts"][name]
        hosts[name] = {key: value for key, value in connection.items() if key.startswith("ansible_")}
    test_hosts = {"all": {"hosts": hosts,
                          "children": {group: {"hosts": {name: None for name in group_hosts(group)}} for group in GROUPS}}}
    (infra / "inventory" / "test-hosts.yml").write_text(yaml.safe_dump(test_hosts))
    return infra


def test_the_tarball_installs_into_an_empty_collections_path(infra):
    assert not (infra / "collections").exists()
    out = _run(infra, str(ROOT / ".venv" / "bin" / "ansible-galaxy"), "collection", "install", "--offline",
               "-r", "requirements.yml", "-p", "collections")
    assert out.returncode == 0, out.stdout + out.stderr
    installed = infra / "collections" / "ansible_collections" / "flaskfleet" / "stack"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["name"] == "stack"
    # Only the tarball's content: no tests, harness or demo app came with it.
    assert not any((installed / name).exists() for name in ("tests", "molecule", "tools", "demo", ".cache"))
    # The one flaskfleet.stack Ansible sees is the installed one.
    listed = _run(infra, str(ROOT / ".venv" / "bin" / "ansible-galaxy"), "collection", "list", "flaskfleet.stack",
                  "--format", "json")
    assert listed.returncode == 0, listed.stderr
    paths = {path for path, collections in json.loads(listed.stdout).items() if "flaskfleet.stack" in collections}
    assert paths == {str(infra / "collections" / "ansible_collections")}, paths


def test_site_from_the_tarball_converges_the_host_with_the_consumers_settings(infra):
    if not (infra / "collections").exists():
        pytest.skip("the install test failed")
    mark = uuid.uuid4().hex
    first = _run(infra, str(ROOT / ".venv" / "bin" / "ansible-playbook"), "flaskfleet.stack.site", CONSUMER_DEPLOYED_BY=mark)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-4000:]
    recap = _recap(first.stdout)
    assert set(recap) == set(group_hosts()) and all(counts["failed"] == 0 for counts in recap.values()), recap
    for name in group_hosts("flask_web"):
        # The app runs with the consumer's settings: what this run deployed.
        result = curl_in(instance_host(name), "/env/FLASKFLEET_DEMO_ECHO_DEPLOYED_BY")
        assert result.rc == 0, result.stderr
        assert json.loads(result.stdout).get("value") == mark, result.stdout
    print(f"consumer: the tarball's site on {sorted(recap)}: {recap}")
