#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_config
short_description: Edit a Kata Containers configuration.toml, keeping every comment and line it does not change
description:
  - Sets VM sizing, hot-plug, C(sandbox_cgroup_only), debug and annotation keys in one Kata Containers
    C(configuration.toml) (Go runtime), or writes them as a C(config.d/) drop-in beside it.
  - Only the lines of changed keys change. A key that the file carries only as a comment
    (C(#enable_debug = true), Kata <= 3.23) is inserted right after that comment, in its table.
  - Enforces Kata's rules before writing anything; every refused input names the file, the key, the
    value and the rule, and leaves the file byte for byte as it was. Unknown or misspelled keys are
    rejected (Kata itself ignores them silently), with the closest known key suggested.
  - Returns the effective values Kata will use after its own clamps, computed from the node's CPUs and memory.
  - Needs the Python library tomlkit on the managed node (role C(kata_prereqs) installs it).
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  path:
    description: The configuration file to edit (the one the shim loads).
    type: path
    default: /etc/kata-containers/configuration.toml
  source:
    description:
      - A shipped default to copy from when O(path) does not exist yet, for example
        C(/opt/kata/share/defaults/kata-containers/configuration-qemu.toml). This is how the C(/etc) override is created.
    type: path
  hypervisor:
    description: The hypervisor table to edit (C(qemu), C(clh), C(firecracker), C(dragonball), ...). Found from the file when omitted.
    type: str
  default_vcpus:
    description: vCPUs of the VM at boot (integer, or a float since Kata 3.3). Kata clamps values above the host's CPUs.
    type: raw
  default_maxvcpus:
    description: Maximum vCPUs (0 means the host's CPUs, capped at 240).
    type: int
  default_memory:
    description: Memory of the VM at boot in MiB; from 256 to 262144 (below 256 Kata silently uses 2048).
    type: int
  default_maxmemory:
    description: Maximum memory in MiB (0 means host RAM; clamped to host RAM).
    type: int
  memory_slots:
    description: Memory hot-plug slots (0 means 10).
    type: int
  enable_virtio_mem:
    description: Memory hot-plug with virtio-mem (QEMU only; hot-plug only, never unplug).
    type: bool
  static_sandbox_resource_mgmt:
    description: >-
      Size the VM once at boot (sum of container limits + defaults) and never hot-plug.
      Upstream's replacement for C(enable_cpu_memory_hotplug=false).
    type: bool
  sandbox_cgroup_only:
    description: >-
      Put the shim, VMM and virtiofsd in the pod's cgroup (C(true)), or in C(/kata_overhead/<sandbox>)
      with only vCPU threads in the pod cgroup (C(false)).
    type: bool
  enable_debug:
    description: Debug logging of runtime, hypervisor and agent together.
    type: bool
  debug_console_enabled:
    description: The agent's debug console (about 65 MiB of extra overhead per sandbox was measured).
    type: bool
  enable_annotations:
    description: Regular expressions of C(io.katacontainers.config.hypervisor.*) annotations pods may use.
    type: list
    elements: str
  enable_annotations_mode:
    description: C(replace) the list with O(enable_annotations), or C(add) the missing entries to what is there.
    type: str
    choices: [replace, add]
    default: replace
  settings:
    description:
      - "Any other key Kata knows, as C({table: {key: value}}). The table C(hypervisor) means the file's hypervisor table."
      - Keys are checked against Kata's catalogue (KC src/runtime/pkg/katautils/config.go) and their types.
    type: dict
    default: {}
  remove:
    description: Keys to delete, as C(table.key) (for example C(runtime.enable_pprof) or C(hypervisor.memory_offset)).
    type: list
    elements: str
    default: []
  dropin:
    description:
      - Write the settings to C(config.d/<dropin>) beside O(path) instead of editing O(path) (Kata 2.5+ loads
        C(config.d/*.toml) in alphabetical order after the main file). The drop-in is owned by katafleet and
        holds exactly the settings of this task. Must end in C(.toml).
    type: str
  backup:
    description: Keep a copy of the old file in O(backup_dir) (never beside the file, where Kata could load it).
    type: bool
    default: false
  backup_dir:
    description: Where backups go.
    type: path
    default: /var/backups/katafleet
  host_cpus:
    description: CPU count used to compute effective values (by default the node's, as Kata sees it).
    type: int
  host_memory_mib:
    description: Memory in MiB used to compute effective values (by default the node's MemTotal).
    type: int
  ownership:
    description:
      - The node's ownership record. When set, a file this task creates (the C(/etc) copy from O(source)) or a
        drop-in it writes is recorded there, and C(playbooks/uninstall.yml) removes exactly those.
    type: path
  adopt_kata_deploy:
    description:
      - A target that kata-deploy manages (its per-shim C(runtimes/<shim>/) copies with its header, its
        C(config.d) drop-ins) is refused; C(true) edits it anyway and records the adoption.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Writes are atomic (temporary file in the same directory, then rename) and keep the file's mode and owner.
seealso:
  - name: Kata configuration keys
    description: The upstream template with every key documented.
    link: https://github.com/kata-containers/kata-containers/blob/main/src/runtime/config/configuration-qemu.toml.in
"""

EXAMPLES = r"""
- name: Size Kata VMs and keep the VMM in the pod cgroup
  katafleet.kata.kata_config:
    path: /etc/kata-containers/configuration.toml
    source: /opt/kata/share/defaults/kata-containers/configuration-qemu.toml
    default_vcpus: 1
    default_memory: 2048
    sandbox_cgroup_only: true
    enable_annotations: [default_vcpus, default_memory]
    enable_annotations_mode: add
    backup: true

- name: Turn on debug everywhere through a drop-in
  katafleet.kata.kata_config:
    path: /opt/kata/share/defaults/kata-containers/configuration.toml
    dropin: 90-debug.toml
    enable_debug: true

- name: Set a key without a named option, remove another
  katafleet.kata.kata_config:
    settings:
      hypervisor:
        enable_iothreads: true
      runtime:
        create_container_timeout: 120
    remove: [runtime.enable_pprof]
"""

RETURN = r"""
path:
  description: The file that was (or would be) written.
  returned: always
  type: str
  sample: /etc/kata-containers/configuration.toml
hypervisor:
  description: The hypervisor table that was edited.
  returned: always
  type: str
  sample: qemu
changes:
  description: Each key whose value changes, with its value before and after (C(null) = absent).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "hypervisor.qemu.default_memory", "before": 2048, "after": 4096}]
effective:
  description: The values Kata will use after its own clamps, for this node's CPUs and memory.
  returned: always
  type: dict
  sample: {"default_vcpus": 1, "default_maxvcpus": 8, "default_memory": 2048, "default_maxmemory": 16000,
           "memory_slots": 10, "host_cpus": 8, "host_memory_mib": 16000, "sandbox_cgroup_only": true,
           "static_sandbox_resource_mgmt": false, "debug_console_enabled": false}
warnings_list:
  description: Where Kata would clamp or ignore a value (also shown as Ansible warnings).
  returned: always
  type: list
  elements: str
backup_file:
  description: The backup copy, when O(backup=true) and the file changed.
  returned: changed and backup
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import tomlkit  # noqa: F401  (used by katafleet.tomledit)  pylint: disable=unused-import
    HAS_TOMLKIT = True
except ImportError:
    HAS_TOMLKIT = False

if HAS_TOMLKIT:
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kata_config, ownership, reconcile
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/kata-containers/configuration.toml"),
            source=dict(type="path"),
            hypervisor=dict(type="str"),
            default_vcpus=dict(type="raw"),
            default_maxvcpus=dict(type="int"),
            default_memory=dict(type="int"),
            default_maxmemory=dict(type="int"),
            memory_slots=dict(type="int"),
            enable_virtio_mem=dict(type="bool"),
            static_sandbox_resource_mgmt=dict(type="bool"),
            sandbox_cgroup_only=dict(type="bool"),
            enable_debug=dict(type="bool"),
            debug_console_enabled=dict(type="bool"),
            enable_annotations=dict(type="list", elements="str"),
            enable_annotations_mode=dict(type="str", default="replace", choices=["replace", "add"]),
            settings=dict(type="dict", default={}),
            remove=dict(type="list", elements="str", default=[]),
            dropin=dict(type="str"),
            backup=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="/var/backups/katafleet"),
            host_cpus=dict(type="int"),
            host_memory_mib=dict(type="int"),
            ownership=dict(type="path"),
            adopt_kata_deploy=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_TOMLKIT:
        module.fail_json(msg=missing_required_lib("tomlkit") + " (role kata_prereqs installs it)")
    p = module.params
    options = {name: p[name] for name in kata_config.NAMED_OPTIONS}
    try:
        plan = kata_config.plan(
            path=p["path"], options=options, settings=p["settings"], remove=p["remove"],
            annotations=p["enable_annotations"], annotations_mode=p["enable_annotations_mode"],
            source=p["source"], hypervisor=p["hypervisor"], dropin=p["dropin"],
            host_cpus=p["host_cpus"], host_memory_mib=p["host_memory_mib"],
        )
        record = ownership.load(p["ownership"]) if p["ownership"] else None
        reconcile.guard_kata(record, plan.target, p["adopt_kata_deploy"])
    except reconcile.Refused as exc:
        module.fail_json(msg=str(exc), path=p["path"], **exc.details)
    except KatafleetError as exc:
        module.fail_json(msg=str(exc), path=p["path"])

    result = dict(
        changed=plan.changed, path=plan.target, hypervisor=plan.hypervisor, changes=plan.changes,
        effective=plan.effective, warnings_list=plan.warnings,
    )
    for warning in plan.warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = dict(before=plan.before or "", after=plan.after,
                              before_header=plan.target, after_header=plan.target)
    if plan.changed and not module.check_mode:
        try:
            backup_file = kata_config.apply(plan, backup=p["backup"], backup_dir=p["backup_dir"])
        except OSError as exc:
            module.fail_json(msg="%s: write failed: %s" % (plan.target, exc), path=plan.target)
        if backup_file:
            result["backup_file"] = backup_file
    if record is not None:
        record_before = ownership.render(record)
        reconcile.record_kata(record, plan, source=p["source"], dropin=bool(p["dropin"]))
        if ownership.render(record) != record_before:
            result["changed"] = True
            if not module.check_mode:
                ownership.save(p["ownership"], record)
    if not module.check_mode and os.path.exists(plan.target):
        file_args = module.load_file_common_arguments(module.params, path=plan.target)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
