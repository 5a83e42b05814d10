# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A new release of the demo app to deploy: a copy of its source, changed, and the variables that point a run at it."""
from __future__ import annotations

import shutil

from .stack import ROOT

APP_STATIC = "src/flaskfleet_demo/static"
# Not shipped by default (flask_app_source_exclude), whatever the source holds.
EXCLUDED = (".git/config", ".env", "build/junk.txt", "src/flaskfleet_demo/__pycache__/stale.cpython-311.pyc")


def app_source(tmp_path, version, extra_static=None, healthz_status=None, tasks_import_error=None,
               proxied_healthz_status=None):
    """A copy of the demo app as a new release: its version, files a deploy must not ship, an extra static
    file, a /healthz that fails (healthz_status; proxied_healthz_status: only asked through nginx, which sends
    X-Request-ID, so the host's own check passes and a later one fails), a Celery app that cannot be imported (tasks_import_error,
    the ImportError's message: the web app imports its tasks only to enqueue, so it still starts)."""
    source = tmp_path / f"app-{version}"
    shutil.copytree(ROOT / "demo" / "app", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    init = source / "src" / "flaskfleet_demo" / "__init__.py"
    code = init.read_text().replace('__version__ = "1.0.0"', f'__version__ = "{version}"')
    if healthz_status:
        code = code.replace('return jsonify(status="ok", pid=os.getpid())',
                            f'return jsonify(status="broken", pid=os.getpid()), {healthz_status}')
    if proxied_healthz_status:
        code = code.replace('        return jsonify(status="ok", pid=os.getpid())',
                            '        if request.headers.get("X-Request-ID"):\n'
                            f'            return jsonify(status="broken"), {proxied_healthz_status}\n'
                            '        return jsonify(status="ok", pid=os.getpid())')
    init.write_text(code)
    for name in EXCLUDED:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("must not be shipped\n")
    if tasks_import_error:
        tasks = source / "src" / "flaskfleet_demo" / "tasks.py"
        tasks.write_text(f"raise ImportError({tasks_import_error!r})\n" + tasks.read_text())
    if extra_static:
        (source / APP_STATIC / extra_static).write_text(f"{version}\n")
    return source


def release_vars(source):
    """The variables that point a run at an app source made by app_source."""
    return {"flask_app_source_dir": str(source), "flask_app_static_src": str(source / APP_STATIC)}
