#!/usr/bin/env bash
# Installs what katafleet's lab, demo and tests need on a fresh Debian 12 machine (run as root).
# Idempotent: skips apt when every package is there, and pip when the venv is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(qemu-system-x86 openssh-server openssh-client containerd runc python3-psutil
              busybox-static iproute2 util-linux procps gcc libc6-dev python3-venv make)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # the package scripts must not start daemons on the host (there may be no init system)
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.katafleet-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  # kubernetes-validate >= 1.25 ships schemas for Kubernetes 1.25+ only; 1.24.1 (schemas 1.10-1.24) goes beside it
  # for RuntimeClass validation against older clusters (role kata_runtimeclass, tests)
  rm -rf .venv/kubernetes-validate-1.24
  .venv/bin/pip install -q --no-deps --target .venv/kubernetes-validate-1.24 'kubernetes-validate==1.24.1'
  touch "$stamp"
fi

# The checkout is the collection katafleet.kata. Ansible finds it through ansible.cfg's collections_path,
# Python (tests, lab, bench) through a .pth file naming the same directory: one import identity,
# ansible_collections.katafleet.kata.plugins.module_utils..., for modules, tests, lab and bench.
coll=.ansible/collections/ansible_collections/katafleet
mkdir -p "$coll"
ln -sfn ../../../.. "$coll/kata"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(pwd)/.ansible/collections" > "$site/katafleet-collection.pth"
