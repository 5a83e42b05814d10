#!/usr/bin/env bash
# Run a command with a Docker-API container engine available.
#   engine.sh run CMD...   start the engine if needed, run CMD, stop what we started
#   engine.sh install      install podman from the distribution when no engine exists
#
# A reachable Docker daemon (DOCKER_HOST, or /var/run/docker.sock) is used as
# is. Otherwise rootful podman serves the Docker API on a socket of our own for
# the length of CMD, configured by the project-local containers.conf: nothing
# under /etc is changed.
#
# CMD sees: DOCKER_HOST, FLASKFLEET_ENGINE (docker|podman) and
# FLASKFLEET_ENGINE_CLI (the CLI for image builds and testinfra).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sock_dir=${FLASKFLEET_PODMAN_SOCKET_DIR:-/run/flaskfleet}
log() { echo "engine.sh: $*" >&2; }

docker_ping() {  # $1: unix socket path
    [ -S "$1" ] && curl -fsS --max-time 5 --unix-socket "$1" http://d/_ping >/dev/null 2>&1
}

install_podman() {
    command -v podman >/dev/null && command -v runc >/dev/null && return 0
    [ "$(id -u)" = 0 ] || { log "podman is missing and we are not root: install podman and runc"; exit 1; }
    log "installing podman and runc from the distribution"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc netavark aardvark-dns iptables conmon slirp4netns uidmap >/dev/null
}

case "${1:-}" in
install)
    install_podman
    ;;
run)
    shift
    external=""
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" != "$DOCKER_HOST" ] && docker_ping "${DOCKER_HOST#unix://}"; then
        external=$DOCKER_HOST
    elif [ -z "${DOCKER_HOST:-}" ] && docker_ping /var/run/docker.sock; then
        external=unix:///var/run/docker.sock
    fi
    if [ -n "$external" ]; then
        log "using the Docker daemon at $external"
        export DOCKER_HOST=$external FLASKFLEET_ENGINE=docker FLASKFLEET_ENGINE_CLI=docker
        exec "$@"
    fi
    install_podman
    export CONTAINERS_CONF=$here/containers.conf
    mkdir -p "$sock_dir"
    sock=$sock_dir/podman-$$.sock
    podman system service --time=0 "unix://$sock" >"$sock_dir/podman-$$.log" 2>&1 &
    svc=$!
    trap 'kill "$svc" 2>/dev/null || true; wait "$svc" 2>/dev/null || true; rm -f "$sock"' EXIT
    for _ in $(seq 1 50); do docker_ping "$sock" && break; sleep 0.2; done
    docker_ping "$sock" || { log "podman API did not come up:"; tail -5 "$sock_dir/podman-$$.log" >&2; exit 1; }
    log "podman $(podman --version | awk '{print $3}') serving the Docker API at unix://$sock"
    export DOCKER_HOST=unix://$sock FLASKFLEET_ENGINE=podman FLASKFLEET_ENGINE_CLI=podman
    rc=0
    "$@" || rc=$?
    exit "$rc"
    ;;
*)
    echo "usage: engine.sh run CMD... | engine.sh install" >&2
    exit 2
    ;;
esac
