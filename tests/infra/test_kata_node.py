"""Post-install checks of real Kata nodes (testinfra).

    pytest tests/infra --hosts=ansible://kata_nodes --ansible-inventory=INVENTORY

What a node must show after `playbooks/site.yml`: the Kata config has the intended values, containerd's
dumped config has the intended handlers and its CRI plugin runs, and every Kata process is in the cgroup
sandbox_cgroup_only promises. "Intended" = the roles' defaults overridden by the inventory's variables,
the same precedence the playbook uses.
"""

import os
import tomllib

import jinja2
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import containerd, feature_gates  # layouts and gate lifecycles: one home each
NAMED = ["default_vcpus", "default_maxvcpus", "default_memory", "default_maxmemory", "memory_slots",
         "enable_virtio_mem", "static_sandbox_resource_mgmt", "sandbox_cgroup_only", "enable_debug",
         "debug_console_enabled"]
RUNTIME_KEYS = {"static_sandbox_resource_mgmt", "sandbox_cgroup_only"}


def role_defaults(*roles):
    out = {}
    for role in roles:
        with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as handle:
            out.update(yaml.safe_load(handle) or {})
    return out


def render(value, variables):
    if isinstance(value, str) and "{{" in value:
        return jinja2.Environment().from_string(value).render(**variables)
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    return value


@pytest.fixture
def intended(host):
    variables = role_defaults("kata_config", "kata_containerd", "kata_feature_gates")
    variables.update(host.ansible.get_variables())
    return render(variables, variables)


def test_kata_config_has_intended_values(host, intended):
    path = intended["kata_config_path"]
    f = host.file(path)
    assert f.exists and f.is_file, "%s missing on %s" % (path, host.backend.hostname)
    data = tomllib.loads(f.content_string)
    (hv_name, hv), = data["hypervisor"].items()
    checked = 0
    for name in NAMED:
        want = intended.get("kata_config_" + name)
        if want is None:
            continue
        if name == "enable_debug":
            places = [data["runtime"], hv, data["agent"]["kata"]]
        elif name == "debug_console_enabled":
            places = [data["agent"]["kata"]]
        elif name in RUNTIME_KEYS:
            places = [data["runtime"]]
        else:
            places = [hv]
        for table in places:
            assert table.get(name) == want, "%s: %s is %r, intended %r" % (path, name, table.get(name), want)
        checked += 1
    for ann in intended.get("kata_config_enable_annotations") or []:
        assert ann in hv.get("enable_annotations", []), "%s: annotation %s not enabled" % (path, ann)
    assert checked, "no intended Kata value to check"


def test_containerd_dump_has_intended_handlers(host, intended):
    cmd = host.run("%s --config %s config dump" % (intended["kata_containerd_bin"], intended["kata_containerd_config_path"]))
    assert cmd.rc == 0, cmd.stderr
    dump = tomllib.loads(cmd.stdout)
    node = dump
    for part in containerd.runtimes_path(dump.get("version", 2)):
        node = node.get(part, {})
    for h in intended["kata_containerd_handlers"]:
        rt = node.get(h["name"])
        if intended.get("kata_containerd_state", "present") == "absent":
            assert rt is None, "handler %s still in containerd's config" % h["name"]
            continue
        assert rt, "handler %s not in `containerd config dump`" % h["name"]
        assert rt["runtime_type"] == h.get("runtime_type", "io.containerd.kata.v2")
        if h.get("config_path"):
            assert rt["options"]["ConfigPath"] == h["config_path"]
        if h.get("pod_annotations") is not None:
            assert rt["pod_annotations"] == h["pod_annotations"]


def test_containerd_runs_with_cri(host, intended):
    cmd = host.run("ctr --address %s plugins ls" % intended["kata_containerd_socket"])
    assert cmd.rc == 0, cmd.stderr
    cri = [l.split() for l in cmd.stdout.splitlines() if l.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
    assert cri and cri[0][-1] == "ok", cmd.stdout


def test_every_kata_process_in_its_intended_cgroup(host):
    res = host.ansible("katafleet.kata.kata_verify", "fail_on_problems=false", check=False)
    assert not res.get("failed"), res.get("msg")
    assert res["problems"] == [], res["table"]


def test_kubelet_files_carry_no_removed_feature_gate(host, intended):
    """A gate removed in the node's Kubernetes version makes the kubelet exit at start."""
    version = intended.get("kata_feature_gates_kubernetes_version")
    if not version:
        out = host.run("kubelet --version")
        assert out.rc == 0, "no kubelet on %s: set kata_feature_gates_kubernetes_version" % host.backend.hostname
        version = out.stdout
    version = feature_gates.parse_version(version)
    removed = [g for g in feature_gates.GATES if feature_gates.stage(g, version) == "removed"]
    checked = 0
    for path in intended["kata_feature_gates_kubelet_files"]:
        f = host.file(path)
        if not f.exists:
            continue
        checked += 1
        for gate in removed:
            assert gate not in f.content_string, "%s still sets %s, removed in Kubernetes %s" % (
                path, gate, feature_gates.vstr(feature_gates.GATES[gate]["removed"]))
    assert checked, "none of %s exists" % intended["kata_feature_gates_kubelet_files"]
