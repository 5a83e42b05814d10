# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Galaxy tarball holds what a consumer runs, and nothing of the test harness."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import tarfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
LEFT_OUT = ("tests/", "molecule/", "tools/", "demo/", "images/", "requirements/", ".cache/", ".venv", ".config/", ".ci/",
            "Makefile")


def test_tarball_has_the_collection_and_no_harness(tmp_path):
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, text=True)
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    tarball = tmp_path / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    leaked = [name for name in names if name.startswith(LEFT_OUT)]
    assert not leaked, leaked
    for needed in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
                   "plugins/filter/plan.py", "plugins/filter/wsgi.py", "roles/supervise/files/flaskfleet-envexec",
                   "roles/flask_app/meta/argument_specs.yml", "playbooks/plan.yml", "playbooks/templates/plan.txt.j2",
                   "meta/execution-environment.yml", "meta/ee-bindep.txt", "meta/ee-requirements.txt"):
        assert needed in names, needed
    # every role the playbook names is in the tarball
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks" / "main.yml").exists())
    assert {"loki", "promtail", "release_zip", "redis", "celery"} <= set(roles), roles
    for role in roles:
        assert f"roles/{role}/tasks/main.yml" in names, role
