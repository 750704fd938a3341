#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_containerd
short_description: Register Kata runtime handlers in containerd's config, validated by the real containerd
description:
  - Adds, updates or removes Kata runtime handlers in containerd's C(config.toml), for every config format in
    the field, found from the file (no C(version) = v1 C(plugins.cri); C(version = 2)
    C(plugins."io.containerd.grpc.v1.cri"); C(version = 3)/C(4) C(plugins."io.containerd.cri.v1.runtime")).
  - Edits keep every comment and line they do not change. A file that does not exist is created from
    C(containerd config default).
  - Before anything is written, the candidate is run through C(containerd --config CANDIDATE config dump) and
    each handler must appear in the dump under the right plugin (the dump silently drops unknown keys and plugin
    ids). C(default_runtime_name) must name a defined runtime; when the file relied on containerd's built-in
    runc, that stanza is written too, because defining any runtime replaces the built-in map.
  - Drop-in mode (C(imports)) only for containerd 2.x configs; on 1.x a drop-in replaces the whole CRI section.
  - Warns when the Kata config allows annotations that O(handlers[].pod_annotations) does not pass through, and
    when O(handlers[].config_path) does not exist on the node.
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  path:
    description: containerd's main config file.
    type: path
    default: /etc/containerd/config.toml
  state:
    description: C(present) adds or updates the handlers; C(absent) removes exactly their stanzas.
    type: str
    choices: [present, absent]
    default: present
  handlers:
    description:
      - The runtime handlers.
      - With O(state=absent) and an empty list, every handler the O(ownership) record lists for O(path) is
        removed, with what else katafleet added (uninstall).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Handler name, a DNS label (it must equal RuntimeClass.handler), for example C(kata-qemu).
        type: str
        required: true
      runtime_type:
        description: The shim v2 runtime type.
        type: str
        default: io.containerd.kata.v2
      runtime_path:
        description: Path of the shim binary (otherwise containerd looks up C(containerd-shim-kata-v2) on PATH).
        type: str
      privileged_without_host_devices:
        description: Privileged pods do not get the host's devices (needed for privileged Kata pods).
        type: bool
        default: true
      pod_annotations:
        description: Pod annotations passed to the runtime; Kata's annotations need C(io.katacontainers.*).
        type: list
        elements: str
        default: ["io.katacontainers.*"]
      container_annotations:
        description: Container annotations passed to the runtime.
        type: list
        elements: str
      config_path:
        description: Kata configuration file of this handler, written as C(options.ConfigPath).
        type: str
      snapshotter:
        description: Snapshotter for this handler.
        type: str
  dropin:
    description:
      - Write the handlers to this file (relative to O(path)'s directory or absolute) and list it in C(imports)
        instead of editing the stanzas in O(path). Only for config version 3+ (containerd 2.x).
      - With O(state=absent) the drop-in and its C(imports) entry are removed together.
    type: str
  containerd_bin:
    description: The containerd binary used to validate (C(config dump)) and to create a missing file.
    type: path
    default: containerd
  validate:
    description: Validate with the real binary before writing. Turn off only where no binary of the right major version exists.
    type: bool
    default: true
  kata_config:
    description: Kata config used for the annotation cross-check when a handler has no O(handlers[].config_path).
    type: path
    default: /etc/kata-containers/configuration.toml
  backup:
    description: Keep copies of the old files in O(backup_dir).
    type: bool
    default: false
  backup_dir:
    description: Where backups go.
    type: path
    default: /var/backups/katafleet
  ownership:
    description:
      - The node's ownership record (JSON, see C(module_utils/katafleet/ownership.py)). When set, every change is
        recorded there, O(prune) removes handlers katafleet added earlier that are no longer listed, and
        O(state=absent) with no O(handlers) removes exactly what it lists.
    type: path
  prune:
    description:
      - With O(ownership) and O(state=present), remove the handlers the record lists that O(handlers) no longer
        lists (a stanza that existed before katafleet changed it is put back as it was).
    type: bool
    default: true
  force:
    description:
      - Remove handlers even while sandboxes of theirs run on the node. Without it, such a removal is refused
        with the list of those sandboxes. Sandboxes are matched through containerd's CRI record (C(ctr
        containers info), extension C(io.cri-containerd.sandbox.metadata), C(RuntimeHandler)) or else by the shim
        binary (C(runtime_path), or the binary named after C(runtime_type)); a binary shared by several handlers
        counts for each of them.
    type: bool
    default: false
  adopt_kata_deploy:
    description:
      - A config that kata-deploy manages (its drop-ins, C(imports) entries, its C(.kata-deploy-created) marker,
        handlers pointing at its per-shim configs) is refused. C(true) takes these files over instead (recorded
        as adopted; kata-deploy's handlers that O(handlers) lists become katafleet's, and an uninstall removes
        them). Only once kata-deploy no longer runs on the node.
    type: bool
    default: false
  address:
    description: containerd's socket, for C(ctr) when running sandboxes are looked up.
    type: path
    default: /run/containerd/containerd.sock
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - containerd must be restarted to load a changed config; the C(kata_containerd) role does that with a health
    check and rollback.
"""

EXAMPLES = r"""
- name: Offer kata-qemu and kata-clh to the CRI
  katafleet.kata.kata_containerd:
    handlers:
      - name: kata-qemu
        runtime_path: /opt/kata/bin/containerd-shim-kata-v2
        config_path: /opt/kata/share/defaults/kata-containers/configuration-qemu.toml
      - name: kata-clh
        config_path: /opt/kata/share/defaults/kata-containers/configuration-clh.toml
    backup: true
  register: ctd

- name: Remove a handler again
  katafleet.kata.kata_containerd:
    state: absent
    handlers: [{name: kata-clh}]

- name: containerd 2.x, as a drop-in
  katafleet.kata.kata_containerd:
    dropin: conf.d/katafleet.toml
    handlers: [{name: kata}]
"""

RETURN = r"""
path:
  description: The main config file.
  returned: always
  type: str
config_version:
  description: The config format found (1, 2, 3 or 4).
  returned: always
  type: int
  sample: 2
dropin:
  description: The drop-in file, in drop-in mode.
  returned: when dropin is set
  type: str
validated_by:
  description: The containerd version that validated the new config (null when nothing changed or validation was off).
  returned: always
  type: str
  sample: 1.6.20~ds1
warnings_list:
  description: Cross-check findings (also shown as Ansible warnings).
  returned: always
  type: list
  elements: str
removed:
  description: Handlers taken out of the config (reconciled away, or uninstalled).
  returned: always
  type: list
  elements: str
running_sandboxes:
  description: Sandboxes found running with a handler that was to be removed.
  returned: when a removal was checked
  type: list
  elements: dict
kata_deploy:
  description: kata-deploy's traces found around the config (the module refuses them unless O(adopt_kata_deploy)).
  returned: always
  type: list
  elements: str
backups:
  description: For each file changed, its backup copy, or null where the file did not exist before (a rollback deletes it).
  returned: changed and backup
  type: dict
  sample: {"/etc/containerd/config.toml": "/var/backups/katafleet/etc__containerd__config.toml.20261122T060000.123.bak"}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import tomlkit  # noqa: F401  (used by katafleet.tomledit)  pylint: disable=unused-import
    HAS_TOMLKIT = True
except ImportError:
    HAS_TOMLKIT = False

if HAS_TOMLKIT:
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import containerd, reconcile
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/containerd/config.toml"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            handlers=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                runtime_type=dict(type="str", default="io.containerd.kata.v2"),
                runtime_path=dict(type="str"),
                privileged_without_host_devices=dict(type="bool", default=True),
                pod_annotations=dict(type="list", elements="str", default=["io.katacontainers.*"]),
                container_annotations=dict(type="list", elements="str"),
                config_path=dict(type="str"),
                snapshotter=dict(type="str"),
            )),
            dropin=dict(type="str"),
            containerd_bin=dict(type="path", default="containerd"),
            validate=dict(type="bool", default=True),
            kata_config=dict(type="path", default="/etc/kata-containers/configuration.toml"),
            backup=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="/var/backups/katafleet"),
            ownership=dict(type="path"),
            prune=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            adopt_kata_deploy=dict(type="bool", default=False),
            address=dict(type="path", default="/run/containerd/containerd.sock"),
        ),
        supports_check_mode=True,
    )
    if not HAS_TOMLKIT:
        module.fail_json(msg=missing_required_lib("tomlkit") + " (role kata_prereqs installs it)")
    p = module.params
    bin_path = module.get_bin_path(p["containerd_bin"]) or p["containerd_bin"]
    try:
        run = reconcile.ContainerdRun(p, bin_path, module.get_bin_path("ctr"))
        plan = run.plan()
    except reconcile.Refused as exc:
        module.fail_json(msg=str(exc), path=p["path"], **exc.details)
    except KatafleetError as exc:
        module.fail_json(msg=str(exc), path=p["path"])
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (p["path"], exc), path=p["path"])

    result = dict(changed=plan.changed or run.record_changed, path=plan.path, config_version=plan.version,
                  validated_by=plan.validated_by, warnings_list=plan.warnings + run.warnings, removed=run.removed,
                  kata_deploy=run.findings)
    if run.sandboxes is not None:
        result["running_sandboxes"] = run.sandboxes
    if plan.dropin_path:
        result["dropin"] = plan.dropin_path
    for warning in result["warnings_list"]:
        module.warn(warning)
    if module._diff:
        diffs = [dict(before=plan.before or "", after=plan.after or "", before_header=plan.path,
                      after_header=plan.path)]
        if plan.dropin_path:
            diffs.append(dict(before=plan.dropin_before or "", after=plan.dropin_after or "",
                              before_header=plan.dropin_path, after_header=plan.dropin_path))
        if run.record_changed:
            diffs.append(run.record_diff())
        result["diff"] = diffs
    if result["changed"] and not module.check_mode:
        try:
            if plan.changed:
                backups = containerd.apply(plan, backup=p["backup"], backup_dir=p["backup_dir"])
                if backups:
                    result["backups"] = backups
            run.save()
        except OSError as exc:
            module.fail_json(msg="%s: write failed: %s" % (plan.path, exc), path=plan.path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
