#!/usr/bin/env bash
# `make bench`: converge the stack (web, Celery worker, Redis, Loki and
# Promtail) into a fresh local systemd container with tools/bench/inventory.yml,
# load it from a second container with wrk (Debian's package), and print the
# table that tools/bench/bench.py also saves under .cache/bench/. Runs inside
# engine.sh. How the converge rows are measured: docs/bench.md.
#   FLASKFLEET_BENCH_PHASES=converge,io,celery,defaults,cpu
#                                  the phases to run (default: all, about 30 min);
#                                  FLASKFLEET_BENCH_PHASES=converge make bench runs only the
#                                  converge rows (about 10-15 min, no client container, no wrk).
#                                  Every phase after converge needs it on the fresh host.
#   FLASKFLEET_BENCH_KEEP=1        keep both containers and the network afterwards
#   FLASKFLEET_BENCH_DURATION=10   seconds of each measured wrk run
#   FLASKFLEET_BENCH_REPEATS=2     runs of each load, interleaved with its group's (the median is kept)
#   FLASKFLEET_BENCH_RERUNS=3      timed idempotent reruns of each playbook, alternated with the baseline's
#                                  (the median is compared); then one untimed -vvv rerun of each counts its remote execs
#   FLASKFLEET_BENCH_FRESH=3       rounds of fresh runs (the baseline's, then the web host's; the medians are
#                                  compared): the first on the bench's host, each later one on a host of its own
#                                  (tools/harness/bench-host.sh), removed after its round
#   FLASKFLEET_BENCH_QUIET_BUSY=40, _QUIET_WAIT=90, _QUIET_BUDGET=180
#                                  before each round, wait until the CPUs are at most 40 % busy,
#                                  up to 90 s each time and 180 s in all
#   FLASKFLEET_ARTIFACTS=/work/shared/artifacts (default: ../shared/artifacts beside the checkout)
#                                  Loki and Promtail release zips (upstream names, SHA256SUMS)
# wrk only ever targets the host container's address on the bench network.
# The converge phase also reruns the web host over SSH: openssh-server is
# installed in the host, root authorizes the key .cache/bench/ssh/id_ed25519
# (made once), and the controller reaches sshd at the host's address on the
# bench network (the address the HTTPS requests of bench.py use as well);
# host keys go to .cache/bench/ssh/known_hosts, emptied on every run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${DOCKER_HOST:?run through tools/harness/engine.sh (make bench)}"
host=flaskfleet-bench
client=flaskfleet-bench-client
network=flaskfleet-bench
cli=$FLASKFLEET_ENGINE_CLI
phases=${FLASKFLEET_BENCH_PHASES:-converge,io,celery,defaults,cpu}
ssh_dir=$root/.cache/bench/ssh
# shellcheck source=tools/harness/ansible-env.sh
. "$root/tools/harness/ansible-env.sh"
# Under podman, the podman CLI's connection, as tools/harness/molecule.sh
# picks it; the baseline playbook runs through the same one.
if [ "${FLASKFLEET_ENGINE:-}" = podman ]; then
    export FLASKFLEET_ANSIBLE_CONNECTION=${FLASKFLEET_ANSIBLE_CONNECTION:-containers.podman.podman}
fi
# Loki and Promtail release zips for the whole-stack host, as tools/harness/molecule.sh finds them.
export FLASKFLEET_ARTIFACTS=${FLASKFLEET_ARTIFACTS:-$(cd "$root/.." && pwd)/shared/artifacts}
log() { echo "bench.sh: $*" >&2; }
has_phase() { case ",$phases," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# The loads need the client (and wrk); the converge rows do not.
needs_client=0
for phase in io celery defaults cpu; do
    if has_phase "$phase"; then needs_client=1; fi
done

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [ "${FLASKFLEET_BENCH_KEEP:-0}" = 1 ]; then
        log "kept: $cli exec -it $host bash; remove with: $cli rm -f $host $client && $cli network rm $network"
        return
    fi
    "$cli" rm -f "$host" >/dev/null 2>&1 || true
    "$cli" rm -f "$client" >/dev/null 2>&1 || true
    # the hosts of the later fresh rounds (converge.py removes each after its round)
    for round in $(seq 2 "${FLASKFLEET_BENCH_FRESH:-3}"); do
        "$cli" rm -f "$host-fresh-$round" >/dev/null 2>&1 || true
    done
    "$cli" network rm "$network" >/dev/null 2>&1 || true
}

start=$(date +%s)
if has_phase converge; then
    for zip in loki-linux-amd64.zip promtail-linux-amd64.zip SHA256SUMS; do
        [ -f "$FLASKFLEET_ARTIFACTS/$zip" ] || { log "no $FLASKFLEET_ARTIFACTS/$zip (set FLASKFLEET_ARTIFACTS)"; exit 1; }
    done
fi
# (The suite is set for images.sh itself: a prefix on `eval` would not reach the command substitution.)
eval "$(FLASKFLEET_SUITES=bookworm tools/harness/images.sh)"
# Always a fresh host: the converge numbers start from nothing. (One name
# per rm: a name that does not exist must not keep the other.)
"$cli" rm -f "$host" >/dev/null 2>&1 || true
"$cli" rm -f "$client" >/dev/null 2>&1 || true
trap cleanup EXIT
"$cli" network inspect "$network" >/dev/null 2>&1 || "$cli" network create "$network" >/dev/null
ip=$(FLASKFLEET_ENGINE_CLI=$cli tools/harness/bench-host.sh "$host" "$network")
client_arg=""
if [ "$needs_client" = 1 ]; then
    # The client resolves the site's name to the host, so wrk sends the SNI and
    # Host nginx serves (it refuses the TLS handshake for other names).
    "$cli" run -d --name "$client" --network "$network" --add-host "app.example.test:$ip" \
        "$FLASKFLEET_IMAGE_BOOKWORM" sleep infinity >/dev/null
    log "host $host at $ip; installing wrk in $client"
    "$cli" exec "$client" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends wrk netbase >/dev/null 2>&1' \
        || { log "could not install wrk from the distribution in $client"; exit 1; }
    client_arg=$client
else
    log "host $host at $ip; phases $phases: no client container"
fi

ssh_args=()
if has_phase converge; then
    # sshd in the host for the SSH rows, root's key authorized.
    mkdir -p "$ssh_dir"
    chmod 700 "$ssh_dir"
    [ -f "$ssh_dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C flaskfleet-bench -f "$ssh_dir/id_ed25519"
    : >"$ssh_dir/known_hosts"
    log "installing openssh-server in $host"
    "$cli" exec "$host" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openssh-server >/dev/null 2>&1 && systemctl enable --now ssh >/dev/null 2>&1' \
        || { log "could not install openssh-server in $host"; exit 1; }
    "$cli" exec -i "$host" sh -c 'install -d -m 700 /root/.ssh && cat >/root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' \
        <"$ssh_dir/id_ed25519.pub"
    ok=0
    for _ in $(seq 1 20); do
        if ssh -i "$ssh_dir/id_ed25519" -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile="$ssh_dir/known_hosts" "root@$ip" true 2>/dev/null; then
            ok=1
            break
        fi
        sleep 1
    done
    [ "$ok" = 1 ] || { log "sshd in $host does not answer at $ip:22 from the controller"; exit 1; }
    ssh_args=(--ssh-host "$ip" --ssh-key "$ssh_dir/id_ed25519" --ssh-known-hosts "$ssh_dir/known_hosts")
fi

rc=0
"$root/.venv/bin/python" tools/bench/bench.py --cli "$cli" --host "$host" --client "$client_arg" --ip "$ip" --network "$network" \
    --phases "$phases" "${ssh_args[@]}" || rc=$?
log "make bench took $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
exit "$rc"
