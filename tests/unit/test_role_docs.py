# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/collection/ is what antsibull-docs makes of the roles' argument specs and
the plugins' documentation (tools/docs/collection.sh, `make docs`): one source.

antsibull-docs is the one beside the Python running the tests, else the one on
PATH: the oldest venv has none and the Makefile puts .venv/bin first, so it is
always the newest venv's. ansible-doc is taken from beside it.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "collection"


def _generate(dest: pathlib.Path) -> None:
    beside = pathlib.Path(sys.executable).parent / "antsibull-docs"
    tool = str(beside) if beside.exists() else shutil.which("antsibull-docs")
    if tool is None:
        pytest.fail("no antsibull-docs beside this Python nor on PATH: `make deps` installs it into .venv")
    env = dict(os.environ, PATH=os.pathsep.join([str(pathlib.Path(tool).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([str(ROOT / "tools" / "docs" / "collection.sh"), str(dest)],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"antsibull-docs rejected the collection's docs:\n{proc.stdout}{proc.stderr}"


def test_docs_are_generated_from_the_specs_and_plugin_docs(tmp_path):
    generated = tmp_path / "collection"
    _generate(generated)
    wanted = {path.name: path.read_bytes() for path in generated.iterdir()}
    committed = {path.name: path.read_bytes() for path in DOCS.iterdir()} if DOCS.is_dir() else {}
    stale = sorted(name for name in wanted if committed.get(name) != wanted[name])
    extra = sorted(set(committed) - set(wanted))
    assert not stale and not extra, (f"docs/collection/ is not what antsibull-docs makes of the specs: stale or missing {stale}, "
                                     f"extra {extra}; run `make docs` and commit docs/collection/")


def test_every_option_of_every_role_is_documented():
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        text = (DOCS / f"{role}_role.rst").read_text(encoding="utf-8")
        for entry, spec in yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"].items():
            missing = [name for name in spec.get("options") or {} if f'id="parameter-{entry}--{name}"' not in text]
            assert not missing, (role, entry, missing)
