#!/usr/bin/env bash
# ansible-lint --profile production over the collection (settings in .ansible-lint: offline, exclusions).
# Installs the `lint` extra of pyproject.toml into .venv when ansible-lint is missing or not the pinned version.
#   bash .ci/lint.sh [ansible-lint arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
want=$(.venv/bin/python - <<'PY'
import re, tomllib
with open("pyproject.toml", "rb") as f:
    pins = tomllib.load(f)["project"]["optional-dependencies"]["lint"]
print(next(re.sub(r"^ansible-lint==", "", p) for p in pins if p.startswith("ansible-lint==")))
PY
)
have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("ansible-lint"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "lint: installing ansible-lint $want into .venv (pip install -e '.[lint]')"
  .venv/bin/pip install -q -e '.[lint]' 2>&1 | grep -v -e '^WARNING: Location' -e BuildBackendWarning || true
  .venv/bin/python -c 'import importlib.metadata as m; assert m.version("ansible-lint") == "'"$want"'"'
fi

# the checkout is the collection katafleet.kata, found through ansible.cfg's collections_path (as scripts/setup.sh
# links it); ansible-lint, offline, installs nothing itself
mkdir -p .ansible/collections/ansible_collections/katafleet
ln -sfn ../../../.. .ansible/collections/ansible_collections/katafleet/kata

echo "lint: $(NO_COLOR=1 .venv/bin/ansible-lint --nocolor --version 2>/dev/null | head -1)"
set +e
PATH="$PWD/.venv/bin:$PATH" .venv/bin/ansible-lint --nocolor "$@"
rc=$?
set -e
if [ $rc -eq 0 ]; then
  echo "lint: OK, ansible-lint --profile production: 0 violations ($(( $(date +%s) - start ))s)"
else
  echo "lint: FAILED, ansible-lint exited $rc: fix the violations listed above ($(( $(date +%s) - start ))s)"
fi
exit $rc
