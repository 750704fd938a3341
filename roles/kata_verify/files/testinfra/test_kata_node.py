"""Post-install checks of Kata nodes (testinfra), run by playbooks/verify.yml from the controller:

    pytest roles/kata_verify/files/testinfra --hosts=ansible://kata_nodes --ansible-inventory=INVENTORY

What a node must show after site.yml, judged against the node's own intended-state record that site.yml
wrote (role kata_verify, tasks_from: record; default /var/lib/katafleet/intended/, or $KATAFLEET_RECORD_DIR):
the Kata config has the intended values, containerd's dumped config has the intended handlers and its CRI
plugin runs, every Kata process is in the cgroup sandbox_cgroup_only promises, and no kubelet file still
sets a gate its Kubernetes version removed.
"""

import json
import os
import tomllib

import pytest

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import containerd, feature_gates

RECORD_DIR = os.environ.get("KATAFLEET_RECORD_DIR", "/var/lib/katafleet/intended")
RUNTIME_KEYS = {"static_sandbox_resource_mgmt", "sandbox_cgroup_only"}


def record(host, part):
    path = "%s/%s.json" % (RECORD_DIR, part)
    f = host.file(path)
    assert f.exists, "%s has no intended-state record %s: run site.yml on it first" % (host.backend.hostname, path)
    return json.loads(f.content_string)


@pytest.fixture
def node(host):
    return record(host, "node")


def test_kata_config_has_intended_values(host, node):
    kata = node["kata"]
    path = kata["written"]
    f = host.file(path)
    assert f.exists and f.is_file, "%s missing on %s" % (path, host.backend.hostname)
    data = tomllib.loads(f.content_string)
    hv = data.get("hypervisor", {}).get(kata["hypervisor"], {})
    for name, want in kata["wanted"].items():
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
    for ann in kata["enable_annotations"]:
        assert ann in hv.get("enable_annotations", []), "%s: annotation %s not enabled" % (path, ann)
    assert kata["wanted"] or kata["enable_annotations"], "the record holds no intended Kata value to check"


def test_containerd_dump_has_intended_handlers(host, node):
    ctd = node["containerd"]
    cmd = host.run("%s --config %s config dump" % (ctd["bin"], ctd["config_path"]))
    assert cmd.rc == 0, cmd.stderr
    dump = tomllib.loads(cmd.stdout)
    runtimes = dump
    for part in containerd.runtimes_path(dump.get("version", 2)):
        runtimes = runtimes.get(part, {})
    for h in ctd["handlers"]:
        rt = runtimes.get(h["name"])
        if ctd["state"] == "absent":
            assert rt is None, "handler %s still in containerd's config" % h["name"]
            continue
        assert rt, "handler %s not in `containerd config dump`" % h["name"]
        assert rt["runtime_type"] == h.get("runtime_type", "io.containerd.kata.v2")
        if h.get("config_path"):
            assert rt["options"]["ConfigPath"] == h["config_path"]
        if h.get("pod_annotations") is not None:
            assert rt["pod_annotations"] == h["pod_annotations"]


def test_containerd_runs_with_cri(host, node):
    cmd = host.run("ctr --address %s plugins ls" % node["containerd"]["socket"])
    assert cmd.rc == 0, cmd.stderr
    cri = [l.split() for l in cmd.stdout.splitlines() if l.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
    assert cri and cri[0][-1] == "ok", cmd.stdout


def test_every_kata_process_in_its_intended_cgroup(host):
    res = host.ansible("katafleet.kata.kata_verify", "fail_on_problems=false", check=False)
    assert not res.get("failed"), res.get("msg")
    assert res["problems"] == [], res["table"]


def test_kubelet_files_carry_no_removed_feature_gate(host):
    """A gate removed in the node's Kubernetes version makes the kubelet exit at start."""
    gates = record(host, "feature_gates")["feature_gates"]
    assert gates["kubernetes_version"], "the record holds no Kubernetes version"
    version = feature_gates.parse_version(gates["kubernetes_version"])
    removed = [g for g in feature_gates.GATES if feature_gates.stage(g, version) == "removed"]
    assert gates["kubelet_files"], "the record lists no kubelet file"
    for path in gates["kubelet_files"]:
        f = host.file(path)
        assert f.exists, "%s is gone from %s" % (path, host.backend.hostname)
        for gate in removed:
            assert gate not in f.content_string, "%s still sets %s, removed in Kubernetes %s" % (
                path, gate, feature_gates.vstr(feature_gates.GATES[gate]["removed"]))
