#!/usr/bin/env bash
# Build or reuse the base images (see images/debian-systemd/build.sh) and
# print them as shell assignments for molecule.sh to source.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
for suite in ${FLASKFLEET_SUITES:-bookworm trixie}; do
    image=$("$root/images/debian-systemd/build.sh" "$suite")
    echo "export FLASKFLEET_IMAGE_${suite^^}=$image"
done
