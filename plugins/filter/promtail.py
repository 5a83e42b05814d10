# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Check the log sources of the promtail role: every problem of every source at once.

Documentation lives in the sidecar file promtail_source_problems.yml. The
filter is pure: it reads the sources and returns a list of messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

FQCN = 'flaskfleet.stack.promtail_source_problems'
_NAME = re.compile(r'^[a-z][a-z0-9_-]*$')
_UNIT = re.compile(r'^[A-Za-z0-9@_.:*-]+$')
_PATH = re.compile(r'^/[^ ]+$')
_LABEL = re.compile(r'^[a-zA-Z][a-zA-Z0-9_]*$')
_FIELD = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
_BOOLEANS = ('true', 'false', 'yes', 'no')
# Labels the role sets itself, and names structured metadata may not take (they are labels).
ROLE_LABELS = ('host', 'level', 'source')
LABEL_NAMES = ('level', 'service', 'app', 'source', 'host')


def _list(value):
    """A list (or tuple), not a string or a mapping."""
    return isinstance(value, (list, tuple))


def _all_match(pattern, values):
    return all(isinstance(value, str) and pattern.match(value) for value in values)


def _shape_holds(source, keys):
    name = source.get('name', '')
    kind = source.get('kind', '')
    units = source.get('units', [])
    paths = source.get('paths', [])
    return (isinstance(name, str) and bool(_NAME.match(name))
            and not set(source) - set(keys)
            and kind in ('journal', 'file')
            and (kind != 'journal' or (_list(units) and len(units) > 0 and _all_match(_UNIT, units)))
            and (kind != 'file' or (_list(paths) and len(paths) > 0 and _all_match(_PATH, paths)))
            and str(source.get('enabled', True)).lower() in _BOOLEANS)


def _labels_hold(labels, forbidden):
    return (isinstance(labels, Mapping)
            and _all_match(_LABEL, labels.keys())
            and not set(labels) & set(forbidden + list(ROLE_LABELS))
            and all(isinstance(value, str) for value in labels.values()))


def _pipeline_holds(pipeline):
    if not isinstance(pipeline, Mapping) or set(pipeline) - {'json', 'structured_metadata'}:
        return False
    fields = pipeline.get('json', {})
    metadata = pipeline.get('structured_metadata', [])
    return (isinstance(fields, Mapping)
            and _all_match(_FIELD, fields.keys())
            and all(isinstance(value, str) for value in fields.values())
            and _list(metadata)
            and all(item in fields for item in metadata)
            and not set(metadata) & set(LABEL_NAMES))


def promtail_source_problems(sources, forbidden_labels, keys):
    """The problems of each source of `sources` (promtail_sources), in order; empty when every source holds.
    `forbidden_labels`: label names of high cardinality; `keys`: the keys a source may have. A value that is not a
    list of sources gives no problem here (the role's own check of promtail_sources reports it)."""
    if not _list(forbidden_labels) or not _list(keys):
        raise AnsibleFilterError(f'{FQCN}: forbidden_labels and keys must be lists')
    if not _list(sources):
        return []
    problems = []
    for source in sources:
        if not isinstance(source, Mapping):
            problems.append(f'promtail_sources entry {source!r} must be a mapping of {", ".join(keys)}.')
            continue
        name = source.get('name', '?')
        if not _shape_holds(source, keys):
            unknown = [key for key in source if key not in keys]
            problems.append(
                f"promtail_sources entry '{name}' must be a mapping of {', '.join(keys)}: name lowercase letters, digits, "
                '- and _; kind journal (with units, a non-empty list of systemd unit names or globs like '
                'gunicorn-*.service) or file (with paths, a non-empty list of absolute paths or globs); enabled true or '
                f"false (got {dict(source)}{'; unknown keys: ' + ', '.join(map(str, unknown)) if unknown else ''}).")
        labels = source.get('labels', {})
        if not _labels_hold(labels, list(forbidden_labels)):
            named = [key for key in labels if key in list(forbidden_labels) + list(ROLE_LABELS)] \
                if isinstance(labels, Mapping) else []
            problems.append(
                f"promtail_sources entry '{name}': labels must map label names to strings, and never name "
                f"{', '.join(named)}: request_id, path, status, task_id and the like are of high cardinality (ship them "
                'as pipeline.structured_metadata), and host, level and source are set by the role (got '
                f'{dict(labels) if isinstance(labels, Mapping) else labels!r}).')
        pipeline = source.get('pipeline', {})
        if not _pipeline_holds(pipeline):
            problems.append(
                f"promtail_sources entry '{name}': pipeline may hold json (field name -> key in a JSON line) and "
                'structured_metadata (a list of those fields, not level, service, app, source or host, which are '
                f'labels); got {dict(pipeline) if isinstance(pipeline, Mapping) else pipeline!r}.')
    return problems


class FilterModule:
    """flaskfleet.stack's check of Promtail's log sources."""

    def filters(self):
        return {'promtail_source_problems': promtail_source_problems}
