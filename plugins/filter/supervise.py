# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pending actions of the supervise role's service registry.

Documentation lives in the sidecar file supervise_request.yml. The filter is
pure: it reads the registry it is given and returns a new one.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

FQCN = 'flaskfleet.stack.supervise_request'
# A restart also loads new code: it supersedes a pending reload, never the reverse.
RANK = {'reload': 1, 'restart': 2}


def supervise_request(registry, action, services=None, app=None):
    """Return the registry with `action` pending for the named services and every service of `app`."""
    if not isinstance(registry, Mapping):
        raise AnsibleFilterError(f'{FQCN}: the registry must be a mapping, got {type(registry).__name__}')
    if action not in RANK:
        raise AnsibleFilterError(f"{FQCN}: action must be reload or restart, got {action!r}")
    known = registry.get('services') or {}
    pending = dict(registry.get('pending') or {})
    targets = list(services or [])
    if app is not None:
        targets += sorted(name for name, entry in known.items() if (entry or {}).get('app') == app)
    for name in targets:
        if not isinstance(name, str) or not name:
            raise AnsibleFilterError(f'{FQCN}: service names must be non-empty strings, got {name!r}')
        if RANK[action] > RANK.get(pending.get(name), 0):
            pending[name] = action
    return {**registry, 'services': dict(known), 'pending': pending}


class FilterModule:
    """flaskfleet.stack supervise registry filters."""

    def filters(self):
        return {'supervise_request': supervise_request}
