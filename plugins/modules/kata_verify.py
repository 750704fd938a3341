#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_verify
short_description: Verify that every Kata sandbox's shim, VMM, virtiofsd and vCPU threads sit in the cgroup sandbox_cgroup_only promises
description:
  - Finds every Kata sandbox on the node (shim by comm C(containerd-shim) confirmed by argv0/exe
    C(containerd-shim-kata-v2), sandbox id from C(-id)), its VMM and virtiofsd processes (descendants of the
    shim) and the VMM's vCPU threads (thread names C(CPU n/KVM), or QMP C(query-cpus-fast)).
  - Reads the node's Kata config (C(sandbox_cgroup_only), C(shared_fs)) and decides cgroup v1 or v2 from the
    filesystem mounted at C(/sys/fs/cgroup).
  - Checks every thread, in every v1 controller, against the expected path. C(sandbox_cgroup_only=true)
    means everything in the pod's sandbox cgroup (cgroupfs C(/kubepods[/<qos>]/pod<uid>/kata_<sandbox>) or systemd
    C(.../kubepods-<qos>-pod<uid>.slice/cri-containerd-<sandbox>.scope)); C(false) means C(/kata_overhead/<sandbox>)
    for shim, VMM and virtiofsd with only the vCPU threads in the pod cgroup (on cgroup v2 the whole VMM).
  - Flags Kata processes in runc-style places such as C(/system.slice/containerd.service), sandboxes without a VMM or
    virtiofsd, and Kata processes with no shim above them.
  - Fails with a readable table when anything is misplaced.
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  kata_config:
    description: Kata config files to read, first existing wins (its C(config.d/) drop-ins applied). Default is Kata's own lookup order.
    type: list
    elements: path
  sandbox_cgroup_only:
    description: The mode to verify against, instead of the one read from the Kata config.
    type: bool
  cgroup_driver:
    description: Kubelet cgroup driver. C(auto) tells it from where each sandbox's pod-side threads are.
    type: str
    choices: [auto, cgroupfs, systemd]
    default: auto
  min_sandboxes:
    description: Fail when fewer sandboxes than this are found (guards against verifying an empty node by mistake).
    type: int
    default: 0
  fail_on_problems:
    description: Fail the task when any thread is misplaced. With C(false) the report is returned all the same.
    type: bool
    default: true
  return_rows:
    description: Return C(all) rows (one per thread) or only the C(problems).
    type: str
    choices: [problems, all]
    default: problems
  proc_root:
    description: Where proc is mounted (for tests).
    type: path
    default: /proc
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Read-only; never reports C(changed).
  - Runs on the node itself (it reads /proc); with hundreds of sandboxes it still takes one /proc scan.
"""

EXAMPLES = r"""
- name: Verify cgroup placement of every Kata sandbox
  katafleet.kata.kata_verify:
  register: placement

- name: Report without failing, every thread
  katafleet.kata.kata_verify:
    fail_on_problems: false
    return_rows: all
"""

RETURN = r"""
summary:
  description: Counts and the mode and cgroup version verified against.
  returned: always
  type: dict
  sample: {"sandboxes": 2, "threads_checked": 22, "misplaced": 0, "cgroup_version": 1, "sandbox_cgroup_only": true}
problems:
  description: One row per misplaced thread or missing process (sandbox, role, pid, tid, comm, expected, actual, verdict, note).
  returned: always
  type: list
  elements: dict
rows:
  description: Every row, when O(return_rows=all).
  returned: when return_rows is all
  type: list
  elements: dict
config_path:
  description: The Kata config file the mode was read from.
  returned: always
  type: str
table:
  description: The problems as a text table.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import cgroups, kata_config
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kata_config=dict(type="list", elements="path"),
            sandbox_cgroup_only=dict(type="bool"),
            cgroup_driver=dict(type="str", default="auto", choices=["auto", "cgroupfs", "systemd"]),
            min_sandboxes=dict(type="int", default=0),
            fail_on_problems=dict(type="bool", default=True),
            return_rows=dict(type="str", default="problems", choices=["problems", "all"]),
            proc_root=dict(type="path", default="/proc"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        config_path, config = kata_config.load_effective(p["kata_config"])
    except KatafleetError as exc:
        module.fail_json(msg="cannot read the Kata config: %s" % exc)
    only = p["sandbox_cgroup_only"]
    if only is None:
        if config_path is None:
            module.fail_json(msg="no Kata config found (%s) and sandbox_cgroup_only not given"
                             % ", ".join(p["kata_config"] or ["Kata's lookup order"]))
        only = bool((config.get("runtime") or {}).get("sandbox_cgroup_only", False))
    shared_fs = [hv.get("shared_fs", "virtio-fs") for hv in (config.get("hypervisor") or {}).values()]
    expect_vfs = (shared_fs or ["virtio-fs"])[0] in ("virtio-fs", "virtio-fs-nydus")
    try:
        with open(os.path.join(p["proc_root"], "self", "mounts")) as handle:
            version = cgroups.cgroup_version(handle.read())
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot tell the cgroup version: %s" % exc)
    report = cgroups.verify(only, version, proc_root=p["proc_root"], driver=p["cgroup_driver"],
                            expect_virtiofsd=expect_vfs)
    table = cgroups.format_table(report["problems"]) if report["problems"] else ""
    result = dict(changed=False, summary=report["summary"], problems=report["problems"], config_path=config_path,
                  table=table)
    if p["return_rows"] == "all":
        result["rows"] = report["rows"]
    s = report["summary"]
    if s["sandboxes"] < p["min_sandboxes"]:
        module.fail_json(msg="found %d Kata sandboxes, expected at least %d" % (s["sandboxes"], p["min_sandboxes"]),
                         **result)
    if report["problems"] and p["fail_on_problems"]:
        module.fail_json(msg="%d of %d Kata threads/processes are not where sandbox_cgroup_only=%s (cgroup v%d) puts "
                             "them:\n%s" % (s["misplaced"], s["threads_checked"], str(only).lower(), version, table),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
