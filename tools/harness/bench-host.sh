#!/usr/bin/env bash
# One fresh host container for `make bench`: Debian 12 (the bench's image),
# systemd as PID 1, package lists fetched, the extra CA certificates
# (FLASKFLEET_EXTRA_CA_DIR) trusted as a corporate image trusts its proxy.
# Prints the container's address on the network. bench.sh makes the bench's
# host with it; tools/bench/converge.py the hosts of the later fresh rounds.
#   tools/harness/bench-host.sh NAME NETWORK
# Needs FLASKFLEET_ENGINE_CLI and FLASKFLEET_IMAGE_BOOKWORM (engine.sh and
# images.sh set them); the network must exist.
set -euo pipefail
name=${1:?the container name}
network=${2:?the network}
cli=${FLASKFLEET_ENGINE_CLI:?run through tools/harness/engine.sh}
image=${FLASKFLEET_IMAGE_BOOKWORM:?the bench image (tools/harness/images.sh)}
log() { echo "bench-host.sh: $*" >&2; }

"$cli" rm -f "$name" >/dev/null 2>&1 || true
"$cli" run -d --name "$name" --hostname "$name" --network "$network" --privileged --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp "$image" >/dev/null
ip=$("$cli" container inspect "$name" --format "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}")
[ -n "$ip" ] || { log "no address for $name on $network"; exit 1; }
# systemd as PID 1 has to be up before apt (apt-key failed on a host just started).
for _ in $(seq 1 60); do
    case $("$cli" exec "$name" systemctl is-system-running --wait 2>/dev/null || true) in
    running | degraded) break ;;
    esac
    sleep 1
done
"$cli" exec "$name" apt-get update -qq >/dev/null
# The host as it comes on this network: it trusts the extra CA certificates
# before any timed run. The plain-task baseline's fresh run has no CA step
# (its pip reaches PyPI through that proxy); the collection's ca_certificates
# role still installs its own copy in the web host's fresh run.
if [ -n "${FLASKFLEET_EXTRA_CA_DIR:-}" ] && compgen -G "$FLASKFLEET_EXTRA_CA_DIR/*.crt" >/dev/null; then
    "$cli" exec "$name" install -d /usr/local/share/ca-certificates/bench-network
    for crt in "$FLASKFLEET_EXTRA_CA_DIR"/*.crt; do
        target=/usr/local/share/ca-certificates/bench-network/${crt##*/}
        "$cli" exec -i "$name" sh -c "cat > '$target'" <"$crt"
    done
    "$cli" exec "$name" update-ca-certificates >/dev/null
fi
echo "$ip"
