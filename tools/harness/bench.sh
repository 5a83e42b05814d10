#!/usr/bin/env bash
# `make bench`: converge the stack (web, Celery worker, Redis) into a fresh
# local systemd container with tools/bench/inventory.yml, load it from a
# second container with wrk (Debian's package), and print the table that
# tools/bench/bench.py also saves under .cache/bench/. Runs inside engine.sh.
#   FLASKFLEET_BENCH_KEEP=1        keep both containers and the network afterwards
#   FLASKFLEET_BENCH_DURATION=10   seconds of each measured wrk run
#   FLASKFLEET_BENCH_REPEATS=2     runs of each load, interleaved with its group's (the median is kept)
#   FLASKFLEET_BENCH_RERUNS=1      idempotent reruns of the web host and the baseline (the median is compared)
#   FLASKFLEET_BENCH_QUIET_BUSY=40, _QUIET_WAIT=90, _QUIET_BUDGET=180
#                                  before each round, wait until the CPUs are at most 40 % busy,
#                                  up to 90 s each time and 180 s in all
# wrk only ever targets the host container's address on the bench network.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${DOCKER_HOST:?run through tools/harness/engine.sh (make bench)}"
host=flaskfleet-bench
client=flaskfleet-bench-client
network=flaskfleet-bench
cli=$FLASKFLEET_ENGINE_CLI
# shellcheck source=tools/harness/ansible-env.sh
. "$root/tools/harness/ansible-env.sh"
# Under podman, the podman CLI's connection, as tools/harness/molecule.sh
# picks it; the baseline playbook runs through the same one.
if [ "${FLASKFLEET_ENGINE:-}" = podman ]; then
    export FLASKFLEET_ANSIBLE_CONNECTION=${FLASKFLEET_ANSIBLE_CONNECTION:-containers.podman.podman}
fi
log() { echo "bench.sh: $*" >&2; }

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [ "${FLASKFLEET_BENCH_KEEP:-0}" = 1 ]; then
        log "kept: $cli exec -it $host bash; remove with: $cli rm -f $host $client && $cli network rm $network"
        return
    fi
    "$cli" rm -f "$host" "$client" >/dev/null 2>&1 || true
    "$cli" network rm "$network" >/dev/null 2>&1 || true
}

start=$(date +%s)
# (The suite is set for images.sh itself: a prefix on `eval` would not reach the command substitution.)
eval "$(FLASKFLEET_SUITES=bookworm tools/harness/images.sh)"
# Always a fresh host: the converge numbers start from nothing.
"$cli" rm -f "$host" "$client" >/dev/null 2>&1 || true
trap cleanup EXIT
"$cli" network inspect "$network" >/dev/null 2>&1 || "$cli" network create "$network" >/dev/null
"$cli" run -d --name "$host" --hostname "$host" --network "$network" --privileged --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
    "$FLASKFLEET_IMAGE_BOOKWORM" >/dev/null
ip=$("$cli" container inspect "$host" --format "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}")
[ -n "$ip" ] || { log "no address for $host on $network"; exit 1; }
# The client resolves the site's name to the host, so wrk sends the SNI and
# Host nginx serves (it refuses the TLS handshake for other names).
"$cli" run -d --name "$client" --network "$network" --add-host "app.example.test:$ip" \
    "$FLASKFLEET_IMAGE_BOOKWORM" sleep infinity >/dev/null
log "host $host at $ip; installing wrk in $client"
"$cli" exec "$client" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends wrk netbase >/dev/null 2>&1' \
    || { log "could not install wrk from the distribution in $client"; exit 1; }
"$cli" exec "$host" systemctl is-system-running --wait >/dev/null || true
"$cli" exec "$host" apt-get update -qq >/dev/null

rc=0
"$root/.venv/bin/python" tools/bench/bench.py --cli "$cli" --host "$host" --client "$client" --ip "$ip" || rc=$?
log "make bench took $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
exit "$rc"
