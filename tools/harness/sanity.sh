#!/usr/bin/env bash
# ansible-test sanity with one venv's ansible-core, from the mirrored tree.
#   sanity.sh VENV TREE
# ansible-test's --venv bootstrap downloads get-pip.py from outside the
# package registries: seed its cache with get-pip-offline.py instead, in a
# private HOME so nothing of the user's is touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$(cd "${1:?VENV}" && pwd)
tree=${2:?TREE}
py=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
reqs=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$reqs" | head -1)
[ -n "$pip_version" ] || { echo "sanity.sh: cannot find ansible-test's pip version in $reqs" >&2; exit 1; }
HOME=$(cd "$here/../.." && pwd)/.cache/ansible-test-home/$py
export HOME
mkdir -p "$HOME/.ansible/test/cache"
cp "$here/get-pip-offline.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
cd "$tree"
echo "sanity.sh: ansible-test sanity, ansible-core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)'), Python $py" >&2
exec "$venv/bin/ansible-test" sanity --venv --python "$py" --color no
