#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_runtimeclass
short_description: RuntimeClass rules for Kata handlers - API version, default overheads, schema validation
description:
  - Without O(objects), returns what a RuntimeClass template needs for O(kubernetes_version) - the
    apiVersion (C(node.k8s.io/v1beta1) before 1.20, C(node.k8s.io/v1) from 1.20) and kata-deploy's default
    C(overhead.podFixed) per handler (kata-qemu 320Mi/250m; clh, fc, dragonball 130Mi/250m). Versions before 1.16,
    where RuntimeClass cannot carry overhead, are refused.
  - With O(objects) (rendered RuntimeClasses), checks kind, apiVersion, handler (a DNS label) and quantities, validates
    each object with kubernetes-validate (strict) against the target version's schema, and warns when
    C(overhead.podFixed.memory) is below what the Kata nodes' configs imply with C(sandbox_cgroup_only=true).
  - Runs on the controller; changes nothing.
version_added: "0.1.0"
author: katafleet maintainers (@katafleet)
options:
  kubernetes_version:
    description: Target cluster version, for example C(1.29).
    type: str
    required: true
  classes:
    description:
      - The RuntimeClasses wanted, each a handler name or C({handler, name, overhead}); returned as RV(classes) with
        C(name) (default the handler) and C(overhead) (default kata-deploy's value for the handler) filled in.
    type: list
    elements: raw
    default: []
  objects:
    description: Rendered RuntimeClass objects to check and validate.
    type: list
    elements: dict
  node_effective:
    description: Per Kata node, the C(effective) values returned by M(katafleet.kata.kata_config) (default_memory, sandbox_cgroup_only, ...).
    type: dict
    default: {}
  legacy_validator_path:
    description: Where kubernetes-validate 1.24.1 is installed (C(pip install --target)), for versions before 1.25.
    type: path
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What the template needs
  katafleet.kata.kata_runtimeclass:
    kubernetes_version: "1.29"
    classes: [kata-qemu, {handler: kata-clh, overhead: {memory: 200Mi, cpu: 250m}}]
  register: rc_plan
"""

RETURN = r"""
api_version:
  description: The RuntimeClass apiVersion for the target version.
  returned: always
  type: str
  sample: node.k8s.io/v1
classes:
  description: O(classes) with name and overhead filled in.
  returned: always
  type: list
  elements: dict
  sample: [{"handler": "kata-qemu", "name": "kata-qemu", "overhead": {"memory": "320Mi", "cpu": "250m"}}]
warnings_list:
  description: Overhead-versus-VM-size findings (also shown as warnings).
  returned: when objects are given
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import feature_gates, runtimeclass
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubernetes_version=dict(type="str", required=True),
            classes=dict(type="list", elements="raw", default=[]),
            objects=dict(type="list", elements="dict"),
            node_effective=dict(type="dict", default={}),
            legacy_validator_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        version = feature_gates.parse_version(p["kubernetes_version"])
        result = dict(changed=False, api_version=runtimeclass.api_version(version),
                      classes=runtimeclass.normalize_classes(p["classes"]))
        if p["objects"] is not None:
            runtimeclass.check_objects(p["objects"], version)
            problems = [e for e in (runtimeclass.validate_schema(o, version, p["legacy_validator_path"])
                                    for o in p["objects"]) if e]
            if problems:
                raise KatafleetError("; ".join(problems), rule="schema of the target Kubernetes version")
            warnings = runtimeclass.overhead_warnings(p["objects"], p["node_effective"] or {})
            if version < (1, 18):
                warnings.append("Kubernetes %s: PodOverhead is alpha (off by default); overhead is ignored unless the "
                                "kata_feature_gates role enables it on kube-apiserver and every kubelet"
                                % feature_gates.vstr(version))
            for w in warnings:
                module.warn(w)
            result["warnings_list"] = warnings
    except KatafleetError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
