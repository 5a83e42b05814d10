# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a Gunicorn config file without importing the app: python check.py FILE.

Every top-level name must be a Gunicorn setting and every value must pass
that setting's own validator. Used as the template task's `validate:`, so a
bad file never replaces the one in use.
"""
import sys

from gunicorn.config import Config


def main(path):
    """Return a list of problems with the config file at path."""
    namespace = {}
    with open(path, encoding="utf-8") as handle:
        exec(compile(handle.read(), path, "exec"), namespace)  # pylint: disable=exec-used
    config = Config()
    problems = []
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        if name not in config.settings:
            problems.append(f"unknown Gunicorn setting {name!r}")
            continue
        try:
            config.set(name, value)
        except (TypeError, ValueError) as error:
            problems.append(f"{name}: {error}")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1])
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)
