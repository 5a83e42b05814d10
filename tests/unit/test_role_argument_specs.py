# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role's meta/argument_specs.yml matches its defaults/main.yml exactly.

An input is either in defaults/ with the same default in the spec, or
required by the spec and absent from defaults/ (a default there would make
`required` a no-op). Role-prefixed names only.
"""
from __future__ import annotations

import pathlib

import pytest
import yaml

ROLES = sorted(p for p in (pathlib.Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _computed(spec, default):
    """A default that is a template while the option's type is not a string's."""
    return isinstance(default, str) and "{{" in default and spec.get("type", "str") not in ("str", "path", "raw")


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_main_spec_matches_defaults(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        if spec.get("required"):
            assert name not in defaults, f"{role.name}: required {name} must not have a default in defaults/main.yml"
        else:
            assert name in defaults, f"{role.name}: {name} is in the spec but not in defaults/main.yml"
            if "default" not in spec and _computed(spec, defaults[name]):
                continue  # a template for a typed option: antsibull-docs takes no such default, the description says it
            assert spec.get("default") == defaults[name], f"{role.name}: default of {name} differs between spec and defaults"
    assert set(defaults) <= set(options), f"{role.name}: undocumented defaults {sorted(set(defaults) - set(options))}"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_inputs_are_role_prefixed(role):
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert all(name.startswith(role.name + "_") for name in options), sorted(options)
