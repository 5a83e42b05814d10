# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/roles/ is what the roles' argument specs give (tools/docs/roles.py): one source."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_role_docs_are_generated_from_the_argument_specs():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs" / "roles.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{proc.stderr}run `make docs` and commit docs/roles/"


def test_every_option_of_every_role_is_documented():
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        text = (ROOT / "docs" / "roles" / f"{role}.md").read_text(encoding="utf-8")
        options = yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"]["main"].get("options") or {}
        missing = [name for name in options if f"| `{name}` |" not in text]
        assert not missing, (role, missing)
