#!/usr/bin/env bash
# Build (or reuse) the systemd base image for one Debian suite.
#   build.sh SUITE   -> prints the image reference on stdout
# The tag is derived from the recipe (this directory + suite), so the image
# is rebuilt only when the recipe changes. Prefers a Containerfile build when
# the registry answers; falls back to debootstrap + import (air-gapped).
set -euo pipefail
suite=${1:?usage: build.sh SUITE (bookworm|trixie)}
here=$(cd "$(dirname "$0")" && pwd)
engine=${FLASKFLEET_ENGINE_CLI:-podman}
mirror=${FLASKFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}

recipe_hash=$(cd "$here" && cat Containerfile packages.txt finalize.sh build.sh | { cat; echo "$suite"; } | sha256sum | cut -c1-12)
image="localhost/flaskfleet/debian-systemd:${suite}-${recipe_hash}"

log() { echo "build.sh: $*" >&2; }

if "$engine" image inspect "$image" >/dev/null 2>&1; then
    log "cached $image"
    echo "$image"
    exit 0
fi

if [ "${FLASKFLEET_IMAGE_FROM_REGISTRY:-auto}" != never ] \
   && timeout 60 "$engine" pull -q "docker.io/library/debian:${suite}" >/dev/null 2>&1; then
    log "building $image from Containerfile"
    "$engine" build -q --build-arg "SUITE=${suite}" -t "$image" "$here" >&2
else
    log "registry unreachable: building $image with debootstrap from $mirror"
    command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }
    root=$(mktemp -d /var/tmp/flaskfleet-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    include=$(grep -v '^#' "$here/packages.txt" | paste -sd, -)
    debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
    rm -f "$root.log"
    cp "$here/finalize.sh" "$root/tmp/finalize.sh"
    chroot "$root" /bin/sh /tmp/finalize.sh
    rm -f "$root/tmp/finalize.sh"
    tar --numeric-owner -C "$root" -c . \
        | "$engine" import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
fi
log "built $image"
echo "$image"
