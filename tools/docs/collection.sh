#!/usr/bin/env bash
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The collection's documentation (roles from meta/argument_specs.yml, modules,
# filters with their sidecar docs, the index) as antsibull-docs writes it:
# simplified RST, one page per role and plugin, no Sphinx needed to read them.
#   collection.sh [DEST]    write DEST (default docs/collection), removing anything else in it
# `make docs` runs it; tests/unit/test_role_docs.py runs it into a temporary
# directory and compares, so the flags live here only.
# antsibull-docs and ansible-doc come from PATH (the Makefile puts .venv/bin first).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/docs/collection}
# antsibull-docs reads collections through ansible-doc: make this checkout (or
# tree) flaskfleet.stack, ahead of any other copy on the collections path.
link=$(mktemp -d)
trap 'rm -rf "$link"' EXIT
mkdir -p "$link/ansible_collections/flaskfleet"
ln -s "$root" "$link/ansible_collections/flaskfleet/stack"
export ANSIBLE_COLLECTIONS_PATH="$link:${ANSIBLE_COLLECTIONS_PATH:-$root/.cache/collections}"
export ANSIBLE_HOME=${ANSIBLE_HOME:-$root/.cache/ansible-home}
mkdir -p "$dest"
# --fail-on-error: a spec antsibull-docs rejects fails here instead of becoming an error page.
# --no-add-antsibull-docs-version: a bump of the tool alone does not rewrite every page.
exec antsibull-docs collection --use-current --fail-on-error \
    --output-format simplified-rst --squash-hierarchy --cleanup everything \
    --no-add-antsibull-docs-version --dest-dir "$dest" flaskfleet.stack
