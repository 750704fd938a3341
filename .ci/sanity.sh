#!/usr/bin/env bash
# `ansible-test sanity` for the collection katafleet.kata, runnable where only the package registries are reachable.
#
# Usage: bash .ci/sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
#   Needs the checkout's .venv (bash scripts/setup.sh): its ansible-core provides ansible-test.
#   KATAFLEET_SANITY_ROOT (default /tmp/katafleet-sanity) is where the tree is copied to; the log is sanity.log there.
#   KATAFLEET_SANITY_VENV (default .venv) is the venv whose ansible-test runs, e.g. one with ansible-core 2.17 or 2.18.
#
# Why a copy: ansible-test must run from a directory that physically is .../ansible_collections/katafleet/kata
# and refuses symlinked paths (.ansible/collections/... in the checkout is a symlink). The copy holds what
# ansible-test itself would consider in a git checkout: tracked and untracked-but-not-ignored files, minus
# deleted ones (`git ls-files --cached --others --exclude-standard`), with their working-tree content.
# It has no .git, so ansible-test sees an unversioned tree and tests every file in it.
#
# Why a bootstrap file: every sanity test runs in its own virtual environment (~/.ansible/test/venv/sanity.<test>/
# 3.11/<hash>), created with `python -m venv --without-pip` and bootstrapped by ansible-test's requirements.py
# (ansible_test/_util/target/setup/), which downloads https://ci-files.testing.ansible.com/ansible-test/get-pip-<pip
# version>.py unless ~/.ansible/test/cache/get_pip_<pip version, dots as _>.py already exists. The version is
# get_venv_packages() in ansible_test/_internal/python_requirements.py (pip 24.2 for ansible-core 2.18-2.19, pip 23.1.2
# with setuptools and wheel for 2.17). That host is not reachable here, so this script writes that cache file itself:
# a stand-in for get-pip.py that runs `python -m ensurepip` (the pip wheel that ships with CPython; Debian:
# python3-venv) in a child process, then `python -m pip install pip==<version> ...` from the package registry (PyPI,
# or the index pip.conf names). Everything else (sanity.<test>.txt, pinned by ansible-test) comes from the same
# registry. `--venv` alone would not help: it replaces only the controller's environment; the per-test environments
# are bootstrapped the same way.
#
# Tools outside PyPI: shellcheck comes from Debian (installed here with apt-get when missing and running as root;
# without it ansible-test only warns and checks no shell script). pwsh (pslint) is not in Debian's archive, and the
# collection has no .ps1 file, so pslint has nothing to check.
# Skipped tests: none (no --skip-test). Ignores, each with its reason: tests/sanity/ignore-2.{17,18,19}.txt.
#
# Runtime on 2 cores: about 2.5 minutes on a fresh machine (9 per-test venvs created and filled from the registry),
# about 40 s when ~/.ansible/test/venv is already there (CI can cache that directory).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv_bin="${KATAFLEET_SANITY_VENV:-$here/.venv}/bin"
root=${KATAFLEET_SANITY_ROOT:-/tmp/katafleet-sanity}
dest="$root/ansible_collections/katafleet/kata"
log="$root/sanity.log"
start=$(date +%s)

[ -x "$venv_bin/ansible-test" ] || { echo "sanity: $venv_bin/ansible-test missing; run bash scripts/setup.sh" >&2; exit 2; }

# 1. the stand-in for get-pip.py, under the name this ansible-test looks for
pip_version=$("$venv_bin/python" - <<'EOF'
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(NativePythonConfig(version='3.11', path='/usr/bin/python3.11'))['pip'])
EOF
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cat > "$cache" <<'EOF'
# Written by katafleet's .ci/sanity.sh: an offline stand-in for https://ci-files.testing.ansible.com/ansible-test/get-pip-*.py.
# ansible-test runs it as `python get_pip.py --disable-pip-version-check pip==X [--no-setuptools] [--no-wheel]`
# inside a fresh venv created --without-pip.
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet'] + args)
EOF

if ! command -v shellcheck >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "sanity: apt-get install shellcheck"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
fi

# 2. the copy at a physical ansible_collections/katafleet/kata path
rm -rf "$dest"
mkdir -p "$dest"
(cd "$here" && git ls-files -z --cached --others --exclude-standard \
   | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
   | tar --null -T - -cf -) | tar -xf - -C "$dest"

# 3. the run
cd "$dest"
set +e
"$venv_bin/ansible-test" sanity --python 3.11 --color no "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

elapsed=$(( $(date +%s) - start ))
ansible_version=$("$venv_bin/python" -c 'import ansible; print(ansible.__version__)')
ignore_file="tests/sanity/ignore-${ansible_version%.*}.txt"
echo
echo "=== ansible-test sanity: katafleet.kata, ansible-core $ansible_version, Python 3.11 ==="
"$venv_bin/python" - "$log" <<'EOF'
import re
import sys

with open(sys.argv[1], encoding='utf-8', errors='replace') as handle:
    lines = handle.read().splitlines()
ran = [m.group(1) for m in (re.match(r'Running sanity test "([^"]+)"', line) for line in lines) if m]
skipped = {m.group(1): line.split('WARNING: ', 1)[-1] for m, line in ((re.search(r'Skipping sanity test "([^"]+)"', line), line) for line in lines) if m}
failed, counts = set(), {}
for i, line in enumerate(lines):
    m = re.match(r'ERROR: Found (\d+) (\S+) issue', line)
    if m:
        counts[m.group(2)] = m.group(1)
    if re.match(r'FATAL: The \d+ sanity test\(s\) listed below', line):
        failed.update(entry.split()[0] for entry in lines[i + 1:] if re.match(r'^[a-z0-9-]+( --python \S+)?$', entry))
for name in ran:
    if name in failed:
        status = 'FAILED (%s issues)' % counts.get(name, '?')
    elif name in skipped:
        status = 'skipped: ' + skipped[name]
    else:
        status = 'ok'
    print('  %-24s %s' % (name, status))
EOF
if [ "$rc" -eq 0 ]; then
  echo "sanity: PASSED in ${elapsed}s; $(grep -c . "$ignore_file" 2>/dev/null || echo 0) ignore lines in $ignore_file"
else
  echo "sanity: FAILED (exit $rc) in ${elapsed}s; the errors are above, the full log is $log"
fi
exit "$rc"
