"""Feature gates by lifecycle and version, on every Kubernetes fixture (tests/data/fixtures/kubernetes)."""

import difflib
import os
import re

import pytest
import yaml

from helpers import fixture_path
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import feature_gates as fg
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

K = fixture_path("kubernetes")
FILES = {
    "kube-apiserver.v1.29.0.kubeadm.yaml": "apiserver_manifest",
    "kubelet-config.v1.20.kubeadm.yaml": "kubelet_config",
    "kubeadm-flags.v1.23-dockershim.env": "kubelet_flags",
    "etc-default-kubelet.krel": "kubelet_flags",
    "10-kubeadm.conf.krel-rpm-sysconfig": "kubelet_flags",
}
VERSIONS = ["1.16", "1.17", "1.18", "1.23", "1.24", "1.25", "1.26", "1.35"]


def test_every_fixture_is_covered():
    assert set(FILES) == {n for n in os.listdir(K) if n != "SOURCES.md"}


def read(name):
    with open(os.path.join(K, name)) as handle:
        return handle.read()


def changed_lines(a, b):
    return [l for l in difflib.ndiff(a.splitlines(), b.splitlines()) if l[:2] in ("- ", "+ ")]


def gates_in(text, kind):
    """The gates the file sets, as the component would read them."""
    if kind == "apiserver_manifest":
        cmd = fg.apiserver_container(yaml.safe_load(text), "x")["command"]
        flags = [c for c in cmd if c.startswith("--feature-gates=")]
        return {k: fg.as_bool(v) for k, v in fg.parse_gate_list(flags[0].split("=", 1)[1])} if flags else {}
    if kind == "kubelet_config":
        return dict(yaml.safe_load(text).get("featureGates") or {})
    out = {}
    for line in text.splitlines():
        if "--feature-gates=" in line:
            val = line.split("--feature-gates=", 1)[1].split()[0].strip('"')
            out.update({k: fg.as_bool(v) for k, v in fg.parse_gate_list(val)})
    return out


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("version", VERSIONS)
def test_pod_overhead_per_version(name, version):
    text = read(name)
    v = fg.parse_version(version)
    kind, new, messages = fg.plan(text, name, {"PodOverhead": True}, v)
    assert kind == FILES[name]
    if v < (1, 18):  # alpha: off by default, must be set
        assert gates_in(new, kind) == {"PodOverhead": True}
        lines = changed_lines(text, new)
        added = [l[2:] for l in lines if l.startswith("+ ")]
        removed = [l[2:] for l in lines if l.startswith("- ")]
        assert all("PodOverhead" in l or l == "featureGates:" for l in added) and len(added) in (1, 2)
        assert len(removed) <= 1  # only the line that holds the flags, when there is one
        if removed:
            assert re.sub(r" ?--feature-gates=PodOverhead=true", "", added[0]) == removed[0]
        assert "set to true" in messages[0]
    else:  # default-on, locked or removed: nothing to do in a file that does not carry it
        assert new == text
        assert ("not needed" in messages[0]) or ("removed in 1.26" in messages[0])
    # idempotent
    assert fg.plan(new, name, {"PodOverhead": True}, v)[1] == new


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("version", VERSIONS)
def test_file_that_carries_the_gate_per_version(name, version):
    """A file set up on a 1.17 cluster (PodOverhead=true), then managed for each later version."""
    original = read(name)
    carried = fg.plan(original, name, {"PodOverhead": True}, (1, 17))[1]
    v = fg.parse_version(version)
    kind, new, messages = fg.plan(carried, name, {"PodOverhead": True}, v)
    if v >= (1, 26):  # removed: the entry would make the component exit, so it goes
        assert new == original
        assert any("removed in Kubernetes 1.26" in m and "exit" in m for m in messages)
    else:
        assert new == carried
    # a removed gate is taken out even when the run is about another gate (upgrade safety)
    if v >= (1, 26):
        assert fg.plan(carried, name, {"RuntimeClass": True}, v)[1] == original


def test_false_entry_on_beta_and_locked_versions():
    text = read("kubelet-config.v1.20.kubeadm.yaml")
    off = fg.plan(text, "k", {"PodOverhead": False}, (1, 18))[1]  # beta: false is allowed
    assert gates_in(off, "kubelet_config") == {"PodOverhead": False}
    fixed = fg.plan(off, "k", {"PodOverhead": True}, (1, 20))  # wanted on, default on: the false entry goes
    assert gates_in(fixed[1], "kubelet_config") == {} and "disabled it, removed" in fixed[2][0]
    assert fixed[1] == text
    fixed = fg.plan(off, "k", {"PodOverhead": True}, (1, 24))  # locked: false would stop the kubelet
    assert fixed[1] == text and "locked to true" in fixed[2][0]


@pytest.mark.parametrize("gate,version,message", [
    ("PodOverhead", (1, 24), "GA and locked to true since 1.24"),
    ("PodOverhead", (1, 25), "cannot be set to false"),
    ("RuntimeClass", (1, 21), "locked to true since 1.20"),
])
def test_locked_gate_to_false_is_an_error(gate, version, message):
    text = read("kubeadm-flags.v1.23-dockershim.env")
    with pytest.raises(KatafleetError) as err:
        fg.plan(text, "flags.env", {gate: False}, version)
    assert message in str(err.value) and gate in str(err.value) and "flags.env" in str(err.value)


def test_runtimeclass_gate_lifecycle():
    text = read("etc-default-kubelet.krel")
    assert fg.plan(text, "f", {"RuntimeClass": True}, (1, 13))[1] == "KUBELET_EXTRA_ARGS=--feature-gates=RuntimeClass=true\n"
    assert fg.plan(text, "f", {"RuntimeClass": True}, (1, 14))[1] == text
    carried = "KUBELET_EXTRA_ARGS=--v=2 --feature-gates=RuntimeClass=true,Foo=true\n"
    assert fg.plan(carried, "f", {"PodOverhead": True}, (1, 24))[1] == "KUBELET_EXTRA_ARGS=--v=2 --feature-gates=Foo=true\n"
    with pytest.raises(KatafleetError, match="does not exist before Kubernetes 1.16"):
        fg.plan(text, "f", {"PodOverhead": True}, (1, 15))


@pytest.mark.parametrize("gates,message", [
    ({"PodOverHead": True}, "does not know this gate"),
    ({"PodOverhead": "yes"}, "must be true or false"),
    ({"PodOverhead": 1}, "must be true or false"),
])
def test_bad_gates(gates, message):
    with pytest.raises(KatafleetError, match=message):
        fg.plan(read("kubelet-config.v1.20.kubeadm.yaml"), "k", gates, (1, 17))


def test_unparsable_manifest():
    broken = read("kube-apiserver.v1.29.0.kubeadm.yaml").replace("  containers:\n", "  containers:\n   - : [\n", 1)
    with pytest.raises(KatafleetError) as err:
        fg.plan(broken, "/etc/kubernetes/manifests/kube-apiserver.yaml", {"PodOverhead": True}, (1, 17),
                kind="apiserver_manifest")
    assert "not valid YAML at line" in str(err.value) and "left untouched" in str(err.value)


def test_runtimeclass_admission_plugin_is_reenabled():
    text = read("kube-apiserver.v1.29.0.kubeadm.yaml").replace(
        "    - --enable-admission-plugins=NodeRestriction\n",
        "    - --enable-admission-plugins=NodeRestriction\n    - --disable-admission-plugins=RuntimeClass,DefaultStorageClass\n")
    assert text != read("kube-apiserver.v1.29.0.kubeadm.yaml")
    _kind, new, messages = fg.plan(text, "m", {"PodOverhead": True}, (1, 29))
    assert "--disable-admission-plugins=DefaultStorageClass\n" in new
    assert any("RuntimeClass admission plugin" in m for m in messages)
    only = text.replace(",DefaultStorageClass", "")
    assert fg.plan(only, "m", {"PodOverhead": True}, (1, 29))[1] == read("kube-apiserver.v1.29.0.kubeadm.yaml")


def test_version_from_manifest_image():
    assert fg.version_from_manifest(read("kube-apiserver.v1.29.0.kubeadm.yaml"), "m") == (1, 29)
    assert fg.parse_version("Kubernetes v1.23.17") == (1, 23)
