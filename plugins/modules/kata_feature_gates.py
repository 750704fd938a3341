#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_feature_gates
short_description: Set, remove or check the Kubernetes feature gates Kata needs, by gate lifecycle and version
description:
  - Edits the feature gates in one kubeadm-style node file, changing only the line that holds them.
    The file is one of (found from its content unless O(kind) says)
    the kube-apiserver static pod manifest (C(--feature-gates=) in the container command), a KubeletConfiguration
    (C(featureGates:)), or a kubelet flags file (C(KUBELET_KUBEADM_ARGS="...") in C(kubeadm-flags.env),
    C(KUBELET_EXTRA_ARGS=) in C(/etc/default/kubelet), C(Environment="KUBELET_FEATURE=--feature-gates=...") in a
    systemd drop-in).
  - Knows the lifecycle of C(PodOverhead) (alpha 1.16, beta 1.18, GA 1.24, removed 1.26) and C(RuntimeClass)
    (alpha 1.12, beta 1.14, GA 1.20, removed 1.24). Below the default-on version a wanted gate is set; where it is
    default-on or locked nothing changes ("not needed"); setting a locked gate to false is an error; where the gate
    has been removed, a present entry is removed, because kube-apiserver and the kubelet exit on an unrecognized
    gate. That keeps upgrades to 1.26+ safe.
  - In the apiserver manifest it also takes C(RuntimeClass) out of C(--disable-admission-plugins) (the admission
    plugin injects C(overhead.podFixed) into pods).
  - Writes are atomic; backups go to O(backup_dir), never into the manifests directory (the kubelet runs every file there).
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  path:
    description: The file to edit.
    type: path
    required: true
  kind:
    description: What the file is; C(auto) tells from its content.
    type: str
    choices: [auto, apiserver_manifest, kubelet_config, kubelet_flags]
    default: auto
  gates:
    description: "Gates and wanted values, for example C({PodOverhead: true})."
    type: dict
    required: true
  state:
    description: C(present) applies O(gates) by lifecycle; C(absent) removes their entries (where allowed).
    type: str
    choices: [present, absent]
    default: present
  kubernetes_version:
    description:
      - Target Kubernetes version (C(1.23), C(v1.23.17)). Read from the kube-apiserver image tag for a manifest, or
        from C(kubelet --version) for kubelet files, when omitted.
    type: str
  variable:
    description: For flags files, the variable whose value holds the kubelet flags (default the line that already has C(--feature-gates), else the first).
    type: str
  backup:
    description: Keep a copy of the old file in O(backup_dir).
    type: bool
    default: false
  backup_dir:
    description: Where backups go (outside the manifests directory).
    type: path
    default: /var/backups/katafleet
  ownership:
    description:
      - The node's ownership record. When set, every gate entry this task adds or changes is recorded there
        (file, gate, value), and C(playbooks/uninstall.yml) removes exactly those entries.
    type: path
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: PodOverhead where the cluster version needs it (1.16-1.17), removed on 1.26+
  katafleet.kata.kata_feature_gates:
    path: /etc/kubernetes/manifests/kube-apiserver.yaml
    gates: {PodOverhead: true}

- name: Same for the kubelet
  katafleet.kata.kata_feature_gates:
    path: /var/lib/kubelet/config.yaml
    gates: {PodOverhead: true}
    kubernetes_version: "1.17"
"""

RETURN = r"""
kind:
  description: The file kind that was edited.
  returned: always
  type: str
  sample: apiserver_manifest
kubernetes_version:
  description: The version the decision was made for.
  returned: always
  type: str
  sample: "1.17"
messages:
  description: What was decided for each gate, and why.
  returned: always
  type: list
  elements: str
  sample: ["PodOverhead: alpha, off by default on 1.17: set to true"]
backup_file:
  description: The backup copy.
  returned: changed and backup
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml  # noqa: F401  (used by katafleet.feature_gates)  pylint: disable=unused-import
    HAS_YAML = True
except ImportError:
    HAS_YAML = False

if HAS_YAML:
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import feature_gates, fileio, ownership, reconcile
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            kind=dict(type="str", default="auto",
                      choices=["auto", "apiserver_manifest", "kubelet_config", "kubelet_flags"]),
            gates=dict(type="dict", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            kubernetes_version=dict(type="str"),
            variable=dict(type="str"),
            backup=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="/var/backups/katafleet"),
            ownership=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML") + " (role kata_prereqs installs it)")
    p = module.params
    path = p["path"]
    text = fileio.read_text(path)
    if text is None:
        module.fail_json(msg="%s does not exist" % path)
    # gate values must be real booleans: YAML 'yes'/'true' arrive as bool, anything else is refused by the logic
    gates = {}
    for name, value in p["gates"].items():
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        gates[name] = value
    try:
        kind = p["kind"]
        if kind == "auto":
            kind = feature_gates.detect_kind(text, path)
        if p["kubernetes_version"]:
            version = feature_gates.parse_version(p["kubernetes_version"])
        elif kind == "apiserver_manifest":
            version = feature_gates.version_from_manifest(text, path)
        else:
            kubelet = module.get_bin_path("kubelet")
            if not kubelet:
                raise KatafleetError("cannot tell the Kubernetes version (no kubelet binary); give kubernetes_version",
                                     path=path, key="kubernetes_version", rule="target version needed")
            rc, out, err = module.run_command([kubelet, "--version"])
            version = feature_gates.parse_version(out)
        kind, new_text, messages = feature_gates.plan(text, path, gates, version, state=p["state"], kind=kind,
                                                      variable=p["variable"])
    except KatafleetError as exc:
        module.fail_json(msg=str(exc), path=path)

    changed = new_text != text
    record = None
    if p["ownership"] and changed:
        try:
            record = ownership.load(p["ownership"])
        except KatafleetError as exc:
            module.fail_json(msg=str(exc), path=path)
        for gate, value in reconcile.gates_set(text, new_text, kind).items():
            ownership.record_gate(record, path, gate, value, feature_gates.vstr(version), kind)
        for gate, value in reconcile.current_gates(text, kind).items():
            if gate not in reconcile.current_gates(new_text, kind):
                ownership.forget_gate(record, path, gate)  # an entry katafleet set and later removed
    result = dict(changed=changed, kind=kind, kubernetes_version=feature_gates.vstr(version), messages=messages)
    if module._diff:
        result["diff"] = dict(before=text, after=new_text, before_header=path, after_header=path)
    if changed and not module.check_mode:
        if p["backup"]:
            result["backup_file"] = fileio.backup(path, p["backup_dir"])
        try:
            fileio.atomic_write(path, new_text)
            if record is not None:
                ownership.save(p["ownership"], record)
        except OSError as exc:
            module.fail_json(msg="%s: write failed: %s" % (path, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
