#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_sizing
short_description: Explain what Kata pods really get - VM size, requests, limits, pod cgroup, QoS and warnings
description:
  - For each Pod or object with a pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) in
    O(workloads), computes the effective requests and limits (init containers and sidecars combined as Kubernetes
    does, plus C(overhead.podFixed)), the QoS class, the pod cgroup limits and the VM's vCPUs and memory at boot and
    after hot-plug (or at boot with C(static_sandbox_resource_mgmt)), with warnings that carry stable codes.
  - The same logic as C(katafleet explain); changes nothing.
version_added: "0.2.0"
author: katafleet maintainers (@katafleet)
options:
  workloads:
    description: Kubernetes objects (dicts) or paths of YAML files (several documents each) on the managed node.
    type: list
    elements: raw
    required: true
  kata_config:
    description: Path of the Kata C(configuration.toml) (with its C(config.d) drop-ins); default Kata's built-in values.
    type: path
  settings:
    description:
      - Kata keys over the config, for example C(default_vcpus) or C(runtime.static_sandbox_resource_mgmt), and
        C(containerd.pod_annotations) / C(containerd.privileged_without_host_devices).
    type: dict
    default: {}
  runtimeclass:
    description: A RuntimeClass object whose C(overhead.podFixed) applies.
    type: dict
  handler:
    description: Handler name; without O(runtimeclass), the project's default overhead for it applies.
    type: str
  host_cpus:
    description: Host CPUs; default the managed node's.
    type: int
  host_memory:
    description: Host memory as a Kubernetes quantity, for example C(64Gi); default the managed node's.
    type: str
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What the web deployment gets on a node
  katafleet.kata.kata_sizing:
    workloads: [/srv/manifests/web.yaml]
    kata_config: /etc/kata-containers/configuration.toml
    handler: kata-qemu
  register: sizing
"""

RETURN = r"""
pods:
  description: One entry per pod - name, qos, requests, limits, pod_cgroup, overhead, vm and warnings (code, message).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "Pod/web", "qos": "Guaranteed", "requests": {"cpu_m": 2000, "memory_mib": 3000},
            "limits": {"cpu_m": 2000, "memory_mib": 3000}, "pod_cgroup": {"cpu_m": 2000, "memory_mib": 3000},
            "vm": {"vcpus": 2, "memory_mib": 3072, "boot_vcpus": 1, "boot_memory_mib": 2048}, "warnings": []}]
config:
  description: The Kata values the pods were explained against (after Kata's clamps) and the host.
  returned: always
  type: dict
notes:
  description: What the figures do not show (for example that kubectl top sees only the containers).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kube, sizing
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            workloads=dict(type="list", elements="raw", required=True),
            kata_config=dict(type="path"),
            settings=dict(type="dict", default={}),
            runtimeclass=dict(type="dict"),
            handler=dict(type="str"),
            host_cpus=dict(type="int"),
            host_memory=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        host_mib = None
        if p["host_memory"] is not None:
            host_mib = kube.integer(kube.parse_resource(p["host_memory"], {"key": "host_memory"})) // kube.MIB
        values = sizing.kata_values(p["kata_config"], sorted((p["settings"] or {}).items()), p["host_cpus"], host_mib)
        handler, overhead = sizing.overhead_from([p["runtimeclass"]] if p["runtimeclass"] else None, p["handler"])
        pods = []
        for index, item in enumerate(p["workloads"]):
            if isinstance(item, dict):
                pods.extend(sizing.pods_from_objects([item], "workloads[%d]" % index))
            elif isinstance(item, str):
                pods.extend(sizing.load_pods([item]))
            else:
                raise KatafleetError("a workload is an object or a file path", key="workloads[%d]" % index,
                                     value=item, rule="workloads")
        report = sizing.explain(pods, values, overhead, handler)
    except KatafleetError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, pods=report["pods"], notes=report["notes"], config=report["config"])


if __name__ == "__main__":
    main()
