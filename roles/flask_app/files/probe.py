# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Run on the host by the flask_app role (python3 -c): one look at the app's
# releases, static contents and links, printed as JSON. Reads only.
import json
import os
import sys

paths = json.loads(sys.argv[1])


def link(path):
    try:
        return os.readlink(path) if path else ''
    except OSError:
        return ''


def directories(parent, prefix=''):
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(parent, name)
        if name.startswith(prefix) and os.path.isdir(path) and not os.path.islink(path):
            found.append({'path': path, 'mtime': os.stat(path).st_mtime})
    return found


static_dir = paths['static_dir']
print(json.dumps({
    'release': os.path.exists(os.path.join(paths['release'], '.complete')),
    'current': link(paths['current']),
    'releases': directories(paths['releases']),
    'static_content': bool(paths['static_content']) and os.path.isdir(paths['static_content']),
    'static_link': link(static_dir),
    'static_is_dir': bool(static_dir) and os.path.isdir(static_dir) and not os.path.islink(static_dir),
    'static_contents': directories(os.path.dirname(static_dir), os.path.basename(static_dir) + '-') if static_dir else [],
}))
