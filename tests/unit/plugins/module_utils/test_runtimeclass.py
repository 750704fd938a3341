"""RuntimeClass objects rendered from the role's own Jinja2 template, validated with kubernetes-validate for each
target version; the refusal cases."""

import os

import jinja2
import pytest
import yaml

from helpers import ROOT
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import runtimeclass as rc
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.feature_gates import parse_version

LEGACY = os.path.join(ROOT, ".venv", "kubernetes-validate-1.24")
TEMPLATE = os.path.join(ROOT, "roles", "kata_runtimeclass", "templates", "runtimeclass.yml.j2")
VERSIONS = ["1.16", "1.17", "1.18", "1.23", "1.24", "1.25", "1.26", "1.35"]
SELECTOR = {"katacontainers.io/kata-runtime": "true"}


def render(version, classes, selector=None):
    selector = SELECTOR if selector is None else selector
    v = parse_version(version)
    plan = {"api_version": rc.api_version(v), "classes": rc.normalize_classes(classes)}
    with open(TEMPLATE) as handle:
        tpl = jinja2.Environment(trim_blocks=True, lstrip_blocks=False).from_string(handle.read())
    text = tpl.render(__kata_runtimeclass_plan=plan, kata_runtimeclass_labels={"app.kubernetes.io/managed-by": "katafleet"},
                      kata_runtimeclass_node_selector=selector)
    return [o for o in yaml.safe_load_all(text) if o]


@pytest.mark.parametrize("version", VERSIONS)
def test_rendered_objects_validate_for_each_version(version):
    objs = render(version, ["kata-qemu", "kata-clh", {"handler": "kata-fc", "name": "kata-firecracker",
                                                      "overhead": {"memory": "200Mi"}}])
    v = parse_version(version)
    assert [o["apiVersion"] for o in objs] == [("node.k8s.io/v1" if v >= (1, 20) else "node.k8s.io/v1beta1")] * 3
    assert [o["handler"] for o in objs] == ["kata-qemu", "kata-clh", "kata-fc"]
    assert objs[0]["overhead"]["podFixed"] == {"memory": "320Mi", "cpu": "250m"}  # kata-deploy's qemu value (2026)
    assert objs[1]["overhead"]["podFixed"] == {"memory": "130Mi", "cpu": "250m"}
    assert objs[2]["overhead"]["podFixed"] == {"memory": "200Mi", "cpu": "250m"}
    assert objs[2]["metadata"]["name"] == "kata-firecracker"
    assert all(o["scheduling"]["nodeSelector"] == SELECTOR for o in objs)
    assert all(o["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "katafleet"} for o in objs)
    rc.check_objects(objs, v)
    for o in objs:
        assert rc.validate_schema(o, v, LEGACY) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_catches_a_wrong_field(version):
    obj = render(version, ["kata-qemu"])[0]
    obj["overhead"]["podFixed"]["memroy"] = obj["overhead"]["podFixed"].pop("memory")
    obj["overhead"]["fixed"] = {}
    problem = rc.validate_schema(obj, parse_version(version), LEGACY)
    assert problem and "kata-qemu does not validate against Kubernetes %s.0" % version in problem


@pytest.mark.parametrize("version", ["1.12", "1.14", "1.15"])
def test_versions_without_overhead_are_refused(version):
    with pytest.raises(KatafleetError, match="cannot carry overhead before Kubernetes 1.16"):
        render(version, ["kata-qemu"])


def test_v1beta1_is_refused_where_it_no_longer_exists():
    obj = render("1.19", ["kata-qemu"])[0]
    assert obj["apiVersion"] == "node.k8s.io/v1beta1"
    with pytest.raises(KatafleetError, match="needs node.k8s.io/v1"):
        rc.check_objects([obj], (1, 26))
    assert "Couldn't find schema" in rc.validate_schema(obj, (1, 26), LEGACY)


@pytest.mark.parametrize("classes,message", [
    (["kata_qemu"], "DNS label"),
    ([{"handler": "kata-qemu", "overhead": {"memory": "lots"}}], "not a Kubernetes quantity"),
])
def test_bad_classes(classes, message):
    with pytest.raises(KatafleetError, match=message):
        rc.check_objects(render("1.29", classes), (1, 29))


def test_overhead_below_what_the_kata_config_implies_warns():
    objs = render("1.29", ["kata-qemu", {"handler": "kata-clh", "overhead": {"memory": "2200Mi"}}])
    eff = {"node1": {"default_memory": 2048, "sandbox_cgroup_only": True},
           "node2": {"default_memory": 2048, "sandbox_cgroup_only": False},
           "node3": {"default_memory": 2048, "sandbox_cgroup_only": True, "debug_console_enabled": True}}
    warnings = rc.overhead_warnings(objs, eff)
    assert len(warnings) == 3  # kata-qemu on node1 and node3; kata-clh (2200Mi) only on node3 (+65 MiB console)
    assert any("kata-qemu" in w and "node1" in w and "2158 MiB" in w for w in warnings)
    assert any("kata-clh" in w and "node3" in w and "2223 MiB" in w for w in warnings)
    assert not any("node2" in w for w in warnings)  # overhead is not charged to the pod there


def test_quantities():
    assert rc.quantity_bytes("320Mi") == 320 * 2 ** 20
    assert rc.quantity_bytes("250m") == 0.25
    assert rc.quantity_bytes("1G") == 10 ** 9
