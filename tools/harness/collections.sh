#!/usr/bin/env bash
# Put the collections this project depends on into a project-local
# collections path, taken from the PyPI `ansible` package (Galaxy is not
# always reachable). Idempotent: a stamp records the source version.
#   collections.sh DEST PIP        install (PIP: the venv's pip)
#   collections.sh --check DEST    fail unless they are there (Molecule's dependency step)
set -euo pipefail
ANSIBLE_PKG_VERSION=${ANSIBLE_PKG_VERSION:-14.5.0}
COLLECTIONS="community/docker containers/podman ansible/posix community/crypto community/general"

check() {
    local dest=$1 c missing=0
    for c in $COLLECTIONS; do
        [ -f "$dest/ansible_collections/$c/MANIFEST.json" ] || { echo "collections.sh: missing $c in $dest (run: make deps)" >&2; missing=1; }
    done
    return $missing
}

if [ "${1:-}" = --check ]; then
    check "${2:?DEST}"
    # shellcheck disable=SC2086  # word splitting wanted
    set -- $COLLECTIONS
    echo "collections.sh: $# collections present"
    exit 0
fi

dest=${1:?usage: collections.sh DEST PIP}
pip=${2:?usage: collections.sh DEST PIP}
stamp=$dest/.from-ansible-$ANSIBLE_PKG_VERSION
if [ -f "$stamp" ] && check "$dest" 2>/dev/null; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$pip" download -q --no-deps --only-binary=:all: -d "$tmp" "ansible==$ANSIBLE_PKG_VERSION"
wheel=$(ls "$tmp"/ansible-*.whl)
mkdir -p "$dest/ansible_collections"
python3 -m zipfile -e "$wheel" "$tmp/x"
for c in $COLLECTIONS; do
    rm -rf "${dest:?}/ansible_collections/$c"
    mkdir -p "$dest/ansible_collections/${c%/*}"
    cp -a "$tmp/x/ansible_collections/$c" "$dest/ansible_collections/$c"
done
rm -f "$dest"/.from-ansible-*
touch "$stamp"
check "$dest"
echo "collections.sh: installed from ansible==$ANSIBLE_PKG_VERSION:" >&2
for c in $COLLECTIONS; do
    printf '  %s %s\n' "${c/\//.}" "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$dest/ansible_collections/$c/MANIFEST.json")" >&2
done
