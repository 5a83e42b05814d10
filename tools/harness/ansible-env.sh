# shellcheck shell=bash
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Sourced by the harness scripts that run ansible-playbook against local
# containers (demo.sh, bench.sh), with $root set to the checkout: the
# project's own tools and collections only, the extra CA bundle for the
# containers, facts not injected as variables, pipelining.
: "${root:?set root to the checkout before sourcing ansible-env.sh}"
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/self:$root/.cache/collections
export ANSIBLE_HOME=$root/.cache/ansible-home
export PATH=$root/.venv/bin:$PATH
export FLASKFLEET_EXTRA_CA_DIR=${FLASKFLEET_EXTRA_CA_DIR-/usr/local/share/ca-certificates}
export ANSIBLE_INJECT_FACT_VARS=false
# One exec per module instead of copy, run and clean up (the containers' become needs no tty).
export ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-True}
