# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: preload
short_description: Load once in the controller's process the plugins every task of a run loads again
version_added: 0.1.0
description:
  - ansible-core runs each task of each host in a worker process forked from the controller's. A worker loads what its
    task needs that the controller's process has not loaded yet, and forgets it when the task ends, so every task
    loads ansible-core's Jinja filters and tests, this collection's filters, its action plugin and its connection
    plugin again (about 15 ms of the controller's time a task with ansible-core 2.19 to 2.21).
  - This lookup loads them in the controller's process, once; every worker forked after it starts with them. Called
    from a play keyword the controller templates before the play's first task (its C(hosts)), it returns its terms
    unchanged.
  - What it loads, ansible-core's Jinja filters, tests and lookups and all of its action plugins; this collection's
    filters and action plugins; the ssh and local connections, the sh shell and sudo. (Another connection plugin
    is loaded by each task as before, since a play's hosts are templated before their variables are read.) Nothing else changes. A plugin
    that fails to load here is left to the task that uses it, which reports the error as it would have; the lookup
    itself never fails.
  - C(flaskfleet.stack.site) and C(flaskfleet.stack.deploy) call it from their first play (playbooks/preflight.yml).
options:
  _terms:
    description: What the lookup returns, unchanged (a play's host pattern).
    type: list
    elements: str
    required: true
author:
  - flaskfleet.stack contributors (@flaskfleet)
"""

EXAMPLES = r"""
# A playbook of your own that includes the collection's roles: the first play's hosts pattern, as given.
- name: Deploy the app on the web hosts
  hosts: "{{ lookup('flaskfleet.stack.preload', 'flask_web') }}"
  roles:
    - flaskfleet.stack.flask_app
"""

RETURN = r"""
_raw:
  description: The terms, unchanged.
  type: list
  elements: str
"""

import os
import pkgutil

from ansible.plugins import loader as plugin_loader
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

display = Display()

# ansible_collections.<namespace>.<name>.plugins.lookup.preload
COLLECTION = '.'.join(__name__.split('.')[1:3])
PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _own(kind):
    """The names of this collection's plugin files of one kind (filter, action)."""
    return sorted(name for _finder, name, ispkg in pkgutil.iter_modules([os.path.join(PLUGINS, kind)]) if not ispkg)


def _steps():
    """(what, callable) for each load, in order; each is tried on its own."""
    steps = [
        ('ansible-core filters', lambda: list(plugin_loader.filter_loader.all())),
        ('ansible-core tests', lambda: list(plugin_loader.test_loader.all())),
        ('ansible-core lookups', lambda: list(plugin_loader.lookup_loader.all(class_only=True))),
        ('ansible-core action plugins', lambda: list(plugin_loader.action_loader.all(class_only=True))),
    ]
    # A collection's Jinja plugins are found by loading every file of its filter directory: the first name does it.
    steps += [(f'{COLLECTION}.{name} (filter)', lambda name=name: plugin_loader.filter_loader.get(f'{COLLECTION}.{name}'))
              for name in _own('filter')[:1]]
    steps += [(f'{COLLECTION}.{name} (action)',
               lambda name=name: plugin_loader.action_loader.get(f'{COLLECTION}.{name}', class_only=True))
              for name in _own('action')]
    steps += [
        (f'{name} (connection)', lambda name=name: plugin_loader.connection_loader.get(name, class_only=True))
        for name in ('ansible.builtin.ssh', 'ansible.builtin.local')
    ]
    steps += [
        ('ansible.builtin.sh', lambda: plugin_loader.shell_loader.get('ansible.builtin.sh')),
        ('ansible.builtin.sudo', lambda: plugin_loader.become_loader.get('ansible.builtin.sudo')),
    ]
    return steps


def preload():
    """Load every plugin of _steps(); return the (what, error) of those that failed."""
    failed = []
    for what, step in _steps():
        try:
            step()
        except Exception as error:  # pylint: disable=broad-exception-caught
            # the task that needs it loads it again and reports the error
            failed.append((what, error))
    return failed


class LookupModule(LookupBase):
    """Load the plugins of a run once; return the terms."""

    def run(self, terms, variables=None, **kwargs):
        for what, error in preload():
            display.vvv(f'{COLLECTION}.preload: {what} not loaded: {error}')
        return list(terms)
