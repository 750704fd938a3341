"""The example inventory's values agree with each other: the RuntimeClass overhead it sets is enough for the
Kata VM defaults and sandbox_cgroup_only mode it rolls out (the warning katafleet itself would print)."""

import os

import yaml

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import runtimeclass
from helpers import ROOT

EXAMPLE = os.path.join(ROOT, "inventories", "example", "group_vars")


def load(name):
    with open(os.path.join(EXAMPLE, name)) as handle:
        return yaml.safe_load(handle)


def test_example_overhead_fits_its_kata_defaults():
    nodes, cluster = load("kata_nodes.yml"), load("all.yml")
    handlers = [h["name"] for h in nodes["kata_containerd_handlers"]]
    classes = runtimeclass.normalize_classes(cluster["kata_runtimeclass_classes"])
    assert sorted(c["handler"] for c in classes) == sorted(handlers)  # one class per handler the nodes run
    objects = [{"metadata": {"name": c["name"]}, "overhead": {"podFixed": c["overhead"]}} for c in classes]
    effective = {"default_memory": nodes["kata_config_default_memory"],
                 "sandbox_cgroup_only": nodes["kata_config_sandbox_cgroup_only"]}
    assert runtimeclass.overhead_warnings(objects, {"worker-1": effective}) == []
    # and the rule is live: kata-deploy's 320Mi with these defaults would be warned about
    small = [dict(objects[0], overhead={"podFixed": {"memory": "320Mi", "cpu": "250m"}})]
    assert len(runtimeclass.overhead_warnings(small, {"worker-1": effective})) == 1
