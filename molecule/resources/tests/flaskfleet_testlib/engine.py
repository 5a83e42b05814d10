# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container engine: its CLI, a testinfra host through it, an instance's published ports.

Hosts are reached through the engine's CLI (``podman exec`` or ``docker exec``),
not through Ansible: one exec per command instead of one module run.
"""
from __future__ import annotations

import os
import subprocess

import testinfra


def engine_cli():
    """The container engine's CLI (docker or podman), as tools/harness/engine.sh sets it."""
    return os.environ.get("FLASKFLEET_ENGINE_CLI", "docker")


def instance_host(instance):
    """A testinfra host for one Molecule instance, through the engine's CLI: every test's hosts come from here."""
    return testinfra.get_host(f"{engine_cli()}://{instance}")


def published_port(instance, port=443):
    """The controller-side 127.0.0.1 port of an instance's port."""
    out = subprocess.run([engine_cli(), "port", instance, f"{port}/tcp"], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0].rsplit(":", 1)[1])
