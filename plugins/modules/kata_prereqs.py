#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_prereqs
short_description: Check and prepare a node's Kata Containers prerequisites in one call
description:
  - In one call on the node (one round trip), reports whether the Python libraries the other katafleet modules
    import (C(tomlkit), C(yaml)) import on the node's Python, and checks what the node needs to run Kata.
  - Checks the hypervisor's device (C(/dev/kvm) for every KVM-based VMM, none for C(remote)) and
    C(/dev/vhost-vsock) where the VMM talks to the guest agent over vhost-vsock (QEMU, StratoVirt; Cloud
    Hypervisor, Firecracker and Dragonball use a hybrid vsock over a unix socket and do not need it).
  - Loads the kernel modules (C(vhost_vsock), C(vhost_net)) with C(modprobe) where they are not loaded yet;
    where the node has no C(modprobe) or no C(/lib/modules/<release>) (containers, nodes sharing a kernel), the
    load is skipped and the reason reported. Persists the modules in O(modules_load_file) for
    C(systemd-modules-load) (atomic write, idempotent, check mode and diff).
  - Where the Kata tools are installed (C(kata-runtime) or C(kata-ctl) in O(kata_tools_dirs) or on C(PATH)),
    runs C(kata-runtime check --no-network-checks --verbose) or C(kata-ctl check no-network-checks) and reports
    its verdict. C(kata-ctl check no-network-checks) runs only the CPU check upstream; O(kata_check_network=true)
    runs C(kata-ctl check all) (which also checks kernel modules and KVM) and the network checks.
  - A node that cannot run Kata fails with one message that lists every problem; O(on_missing=warn) turns them
    into warnings (for image builders, whose build host is not the node).
  - Needs only the Python standard library on the node.
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  root:
    description:
      - Directory under which every node path (C(/dev), C(/etc), C(/proc), C(/sys), C(/lib/modules),
        O(kata_tools_dirs)) is read and written. Tools found under it are run as they are (no chroot).
      - C(PATH) is searched for C(modprobe) and the Kata tools only when this is C(/).
    type: path
    default: /
  libraries:
    description: Python modules to try to import on the node's Python.
    type: list
    elements: str
    default: [tomlkit, yaml]
  host_checks:
    description: Check devices, load and persist kernel modules and run the Kata check; C(false) reports only O(libraries).
    type: bool
    default: true
  hypervisor:
    description: The VMM Kata uses on this node; sets the defaults of O(hypervisor_device), O(vsock_device) and O(kernel_modules).
    type: str
    choices: [qemu, clh, firecracker, dragonball, stratovirt, remote]
    default: qemu
  hypervisor_device:
    description: The device the VMM opens; C(default) picks it from O(hypervisor) (C(/dev/kvm), none for C(remote)); C(none) checks none.
    type: str
    default: default
  vsock_device:
    description: The vsock device to check; C(default) is C(/dev/vhost-vsock) for C(qemu) and C(stratovirt), none otherwise; C(none) checks none.
    type: str
    default: default
  kernel_modules:
    description: Kernel modules to load and persist; default C([vhost_vsock, vhost_net]), C([]) for C(remote). An empty list removes O(modules_load_file).
    type: list
    elements: str
  load_modules:
    description: Load missing modules with C(modprobe) (reported as skipped when C(false)).
    type: bool
    default: true
  persist_modules:
    description: Keep O(modules_load_file) listing O(kernel_modules).
    type: bool
    default: true
  modules_load_file:
    description: The C(modules-load.d) file katafleet owns (below O(root)).
    type: path
    default: /etc/modules-load.d/katafleet.conf
  kata_check:
    description: Which Kata tool's check to run; C(auto) prefers C(kata-runtime), then C(kata-ctl), and skips when neither is installed.
    type: str
    choices: [auto, kata-runtime, kata-ctl, none]
    default: auto
  kata_check_network:
    description: Let the Kata check use the network (release checks); off by default, nodes are often offline.
    type: bool
    default: false
  kata_tools_dirs:
    description: Where the Kata tools are looked for (below O(root)) before C(PATH).
    type: list
    elements: path
    default: [/opt/kata/bin]
  kata_check_timeout:
    description: Seconds the Kata check may run.
    type: int
    default: 120
  on_missing:
    description: C(fail) fails the node with one message listing every problem; C(warn) reports them as warnings and O(ready=false).
    type: str
    choices: [fail, warn]
    default: fail
attributes:
  check_mode:
    support: full
    description: Reports what it would load and write; the Kata check is skipped (C(kata-runtime check) loads kernel modules itself).
  diff_mode:
    support: full
    description: Shows the change to O(modules_load_file).
notes:
  - "Upstream rules: kata-containers src/runtime/cmd/kata-runtime/kata-check.go (flags, verdict lines, modules),
    src/tools/kata-ctl/src/args.rs and ops/check_ops.rs (subcommands), kubespray
    roles/container-engine/kata-containers/tasks/main.yml (vhost_vsock, vhost_net in modules-load.d)."
"""

EXAMPLES = r"""
- name: Check the node and learn which libraries the role must install
  katafleet.kata.kata_prereqs:
  register: kata_prereqs_node

- name: Cloud Hypervisor node (no vhost-vsock device needed)
  katafleet.kata.kata_prereqs:
    hypervisor: clh

- name: Image builder, report missing devices as warnings
  katafleet.kata.kata_prereqs:
    root: /mnt/image
    load_modules: false
    kata_check: none
    on_missing: warn
"""

RETURN = r"""
libraries:
  description: Per library, whether it imports on the node's Python, its version and the import error.
  returned: always
  type: dict
  sample: {tomlkit: {present: true, version: "0.11.7", error: null}, yaml: {present: false, version: null, error: "ModuleNotFoundError: No module named 'yaml'"}}
missing_libraries:
  description: The libraries that did not import.
  returned: always
  type: list
  elements: str
  sample: [yaml]
python:
  description: The node's Python (executable, version, first site-packages directory).
  returned: always
  type: dict
  sample: {executable: /usr/bin/python3, version: "3.11.2", site_packages: /usr/local/lib/python3.11/dist-packages}
ready:
  description: Whether the node can run Kata (no problem found).
  returned: always
  type: bool
problems:
  description: Everything that keeps the node from running Kata, as in the failure message.
  returned: always
  type: list
  elements: str
  sample: ["/dev/vhost-vsock is missing: load the vhost_vsock kernel module; vhost_vsock skipped (no modprobe on this node)"]
hypervisor:
  description: The hypervisor the checks were made for.
  returned: when host_checks
  type: str
  sample: qemu
kernel_release:
  description: The running kernel's release (from C(/proc/sys/kernel/osrelease)).
  returned: when host_checks
  type: str
kernel_modules:
  description: Per module, what was done (C(already_loaded), C(builtin), C(loaded), C(would_load), C(skipped), C(failed)) and why.
  returned: when host_checks
  type: list
  elements: dict
  sample: [{name: vhost_vsock, state: skipped, reason: "no modprobe on this node; no /lib/modules/6.1.0 on this node (no module files for the running kernel)"}]
modules_load_file:
  description: The modules-load.d file (path, changed, before, after).
  returned: when host_checks
  type: dict
devices:
  description: Per device checked, its role (C(hypervisor), C(vsock)), path, whether it is a character device, and why not.
  returned: when host_checks
  type: list
  elements: dict
  sample: [{role: hypervisor, path: /dev/kvm, present: true, reason: "character device 10:232"}]
kata_check:
  description: The Kata tool's check (tool, path, command, rc, passed, verdict, output), or why it was skipped (skipped, reason).
  returned: when host_checks
  type: dict
  sample: {tool: kata-runtime, command: [/opt/kata/bin/kata-runtime, check, --no-network-checks, --verbose], rc: 0, passed: true, verdict: "System can currently create Kata Containers", skipped: false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import host


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            libraries=dict(type="list", elements="str", default=list(host.DEFAULT_LIBRARIES)),
            host_checks=dict(type="bool", default=True),
            hypervisor=dict(type="str", default="qemu",
                            choices=["qemu", "clh", "firecracker", "dragonball", "stratovirt", "remote"]),
            hypervisor_device=dict(type="str", default="default"),
            vsock_device=dict(type="str", default="default"),
            kernel_modules=dict(type="list", elements="str"),
            load_modules=dict(type="bool", default=True),
            persist_modules=dict(type="bool", default=True),
            modules_load_file=dict(type="path", default=host.MODULES_LOAD_FILE),
            kata_check=dict(type="str", default="auto", choices=["auto", "kata-runtime", "kata-ctl", "none"]),
            kata_check_network=dict(type="bool", default=False),
            kata_tools_dirs=dict(type="list", elements="path", default=list(host.KATA_TOOL_DIRS)),
            kata_check_timeout=dict(type="int", default=120),
            on_missing=dict(type="str", default="fail", choices=["fail", "warn"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = host.inspect(
            root=p["root"], libraries=p["libraries"], host_checks=p["host_checks"], hypervisor=p["hypervisor"],
            hypervisor_device=p["hypervisor_device"], vsock_device=p["vsock_device"],
            kernel_modules=p["kernel_modules"], load=p["load_modules"], persist=p["persist_modules"],
            modules_load_file=p["modules_load_file"], kata_check=p["kata_check"],
            kata_check_network=p["kata_check_network"], kata_tool_dirs=p["kata_tools_dirs"],
            kata_check_timeout=p["kata_check_timeout"], check_mode=module.check_mode)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="kata_prereqs: %s" % exc)

    mfile = result.get("modules_load_file")
    if mfile is not None and module._diff and mfile.get("changed"):
        result["diff"] = dict(before=mfile["before"] or "", after=mfile["after"] or "",
                              before_header=mfile["path"], after_header=mfile["path"])
    result["ready"] = not result["problems"]
    if result["problems"]:
        message = host.failure_message(result)
        if p["on_missing"] == "fail":
            module.fail_json(msg=message, **result)
        module.warn(message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
