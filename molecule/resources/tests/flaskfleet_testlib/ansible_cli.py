# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible's CLIs against Molecule's inventory: a run, an instance's facts, a converge of one instance."""
from __future__ import annotations

import json
import os
import signal
import subprocess

from .stack import ROOT


def ansible_run(args, check=True):
    """Run an ansible CLI (ansible, ansible-playbook) against Molecule's inventory."""
    env = dict(os.environ, ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_NOCOLOR="1")
    cmd = [args[0], "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args[1:]]
    return subprocess.run(cmd, env=env, check=check, capture_output=True, text=True, cwd=ROOT)


def changed_tasks(output):
    """The tasks a playbook's output reports as changed, each as "TASK [name] host": what to show when a
    rerun that should change nothing did."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("]", 1)[0] + "]"
        elif line.startswith("changed: ["):
            found.append(f"{task} {line.split('[', 1)[1].split(']', 1)[0]}")
    return found


def gather_facts(instance):
    """An instance's ansible_facts, gathered by Ansible's setup module."""
    out = ansible_run(["ansible", instance, "-m", "ansible.builtin.setup", "-o"]).stdout
    gathered = json.loads(out.split("=>", 1)[1])["ansible_facts"]
    # as plays see them in ansible_facts: without the ansible_ prefix
    return {key.removeprefix("ansible_"): value for key, value in gathered.items()}


def converge(instance, extra=None, *options):
    """Rerun the fleet playbook on one instance, with extra variables; returns the process (not checked)."""
    args = ["ansible-playbook", "molecule/resources/converge.yml", "--limit", instance, *options]
    if extra:
        args += ["-e", json.dumps(extra)]
    return ansible_run(args, check=False)


def converge_stopped_after(instance, task, extra=None, *options):
    """A converge of one instance killed (its whole process group, as a lost connection or a
    Ctrl-C would stop it) as soon as `task` has run: when the next task starts. Returns the output."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "molecule/resources/converge.yml",
           "--limit", instance, *options] + (["-e", json.dumps(extra)] if extra else [])
    env = dict(os.environ, ANSIBLE_INJECT_FACT_VARS="False", ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    lines, seen = [], False
    with subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as proc:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("TASK [") and seen:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            seen = seen or (line.startswith("TASK [") and task in line)
        proc.wait()
    assert seen, "".join(lines)[-3000:]
    return "".join(lines)
