#!/usr/bin/env bash
# molecule with this project's environment: base images built or reused,
# project-local collections, a private ANSIBLE_HOME (no stale copy of the
# collection in ~/.ansible shadows the checkout; Molecule's prerun, which would
# copy the checkout there, is off in .config/molecule/config.yml), and the
# controller's extra CA bundle offered to the containers.
# Runs inside engine.sh (DOCKER_HOST set).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${DOCKER_HOST:?run through tools/harness/engine.sh}"
eval "$(tools/harness/images.sh)"
# The checkout itself is flaskfleet.stack (a symlink made by `make deps`).
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/self:$root/.cache/collections
export ANSIBLE_HOME=$root/.cache/ansible-home
# Pipelining (one exec per module), as Molecule's own ansible.cfg already has
# it (config_options), also for the tests' own ansible-playbook runs.
export ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-True}
# Under podman, the podman CLI's connection: each task's exec costs half of
# one through the Docker API on podman's socket (a tagged converge of the web
# host: 58 s instead of 2 min 3 s). A real Docker daemon keeps the Docker API.
if [ "${FLASKFLEET_ENGINE:-}" = podman ]; then
    export FLASKFLEET_ANSIBLE_CONNECTION=${FLASKFLEET_ANSIBLE_CONNECTION:-containers.podman.podman}
fi
export PATH=$root/.venv/bin:$PATH
# Extra CA certificates for networks that intercept HTTPS (pip in the
# containers needs them). Default: the controller's local CA directory.
export FLASKFLEET_EXTRA_CA_DIR=${FLASKFLEET_EXTRA_CA_DIR-/usr/local/share/ca-certificates}
# Loki and Promtail release zips (upstream names, SHA256SUMS) for the tests.
export FLASKFLEET_ARTIFACTS=${FLASKFLEET_ARTIFACTS:-$(cd "$root/.." && pwd)/shared/artifacts}
[ -t 1 ] || export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
exec "$root/.venv/bin/molecule" "$@"
