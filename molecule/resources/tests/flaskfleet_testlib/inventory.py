# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Molecule's side of a run: the instances of an inventory group and the scenario's name."""
from __future__ import annotations

import os
import pathlib

import yaml


def group_hosts(group="all"):
    """The Molecule instances in an inventory group, sorted."""
    path = os.environ["MOLECULE_INVENTORY_FILE"]
    with open(path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    return sorted((inventory.get(group) or {}).get("hosts") or {})


def scenario_name():
    """The Molecule scenario the tests run against (from its inventory's path when the variable is unset)."""
    name = os.environ.get("MOLECULE_SCENARIO_NAME")
    if name:
        return name
    return pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parents[1].name.rsplit(".", 1)[-1]


def group_vars(group):
    """The variables Molecule gave an inventory group (its scenario's group_vars)."""
    path = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "group_vars" / group
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}
