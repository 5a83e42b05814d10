# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the Molecule scenarios' testinfra tests, one module per concern.

- stack: the checkout, the site, app and unit names, the supervision backend
- inventory: Molecule's instances and the scenario's name
- engine: the container engine's CLI, testinfra hosts, published ports
- ansible_cli: ansible and ansible-playbook against Molecule's inventory
- service: the app's Gunicorn processes and answers, seen from inside a host
- cgroups: a unit's cgroup, its memory limit and OOM kills
- https: the one HTTPS client (by the site's name, SNI), also used by
  tools/bench: a request, a kept-alive session, a load loop
- releases: a new release of the demo app to deploy
- faults: the fault table (record_fault)
- cpu: the controller's CPU seconds

Nothing is imported here: tools/bench imports flaskfleet_testlib.https
alone, which needs the standard library only.
"""
