#!/usr/bin/env bash
# Print the newest Python >= the given minor version found on this machine
# (PATH, then pyenv), or nothing. Usage: find-python.sh 3.12
set -euo pipefail
want=${1:-3.12}
cands=()
for v in 3.14 3.13 3.12 3.11; do
    command -v "python$v" >/dev/null 2>&1 && cands+=("$(command -v "python$v")")
done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
while IFS= read -r p; do cands+=("$p"); done < <(printf '%s\n' "$pyenv_root"/versions/3.*/bin/python3 | sort -rV)
cands+=(/usr/bin/python3)
best="" bestv=""
for p in "${cands[@]}"; do
    v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    "$p" -c 'import venv, ensurepip' 2>/dev/null || continue
    if [ -z "$bestv" ] || [ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -1)" = "$v" ] && [ "$v" != "$bestv" ]; then
        best=$p bestv=$v
    fi
done
[ -n "$best" ] || exit 1
if [ "$(printf '%s\n%s\n' "$want" "$bestv" | sort -V | head -1)" != "$want" ]; then
    exit 1
fi
echo "$best"
