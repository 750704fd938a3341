"""kata_feature_gates and the kata_runtimeclass role through ansible-playbook."""

import json
import os
import shutil

import yaml

from helpers import ROOT, VENV_BIN, ansible_env, fixture_path, parse_results, sha

MANIFEST = fixture_path("kubernetes", "kube-apiserver.v1.29.0.kubeadm.yaml")
KUBELET = fixture_path("kubernetes", "kubelet-config.v1.20.kubeadm.yaml")


def test_feature_gates_module_check_diff_apply_idempotent(playbook, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    path = str(manifests / "kube-apiserver.yaml")
    shutil.copyfile(MANIFEST, path)
    digest = sha(path)
    task = """
    - name: gates
      katafleet.kata.kata_feature_gates:
        path: {path}
        gates: {{PodOverhead: true}}
        kubernetes_version: "1.17"
        backup: true
        backup_dir: {bk}
    """.format(path=path, bk=tmp_path / "bk")
    rc, res, _ = playbook(task, check=True, diff=True)
    assert rc == 0 and res[0]["changed"] and sha(path) == digest
    assert "+    - --feature-gates=PodOverhead=true" in "".join(
        "+" + l for l in res[0]["diff"]["after"].splitlines(True) if "feature-gates" in l)
    assert res[0]["messages"] == ["PodOverhead: alpha, off by default on 1.17: set to true"]
    rc, res, _ = playbook(task)
    assert rc == 0 and res[0]["changed"]
    assert os.listdir(manifests) == ["kube-apiserver.yaml"]  # no backup or temp file where the kubelet runs pods
    assert open(res[0]["backup_file"]).read() == open(MANIFEST).read()
    cmd = yaml.safe_load(open(path))["spec"]["containers"][0]["command"]
    assert "--feature-gates=PodOverhead=true" in cmd
    rc, res, _ = playbook(task)
    assert rc == 0 and not res[0]["changed"]
    # the same file on 1.26: the entry would stop kube-apiserver, so it is removed
    rc, res, _ = playbook(task.replace('"1.17"', '"1.26"'))
    assert rc == 0 and res[0]["changed"] and open(path).read() == open(MANIFEST).read()


def test_feature_gates_version_from_the_manifest_image(playbook, tmp_path):
    path = str(tmp_path / "kube-apiserver.yaml")
    shutil.copyfile(MANIFEST, path)
    rc, res, _ = playbook("""
    - name: gates
      katafleet.kata.kata_feature_gates:
        path: {path}
        gates: {{PodOverhead: true}}
    """.format(path=path))
    assert rc == 0 and not res[0]["changed"] and res[0]["kubernetes_version"] == "1.29"


def test_feature_gates_bad_input_leaves_file(playbook, tmp_path):
    path = str(tmp_path / "config.yaml")
    shutil.copyfile(KUBELET, path)
    digest = sha(path)
    for gates, message in (("{PodOverHead: true}", "does not know this gate"),
                           ("{PodOverhead: maybe}", "must be true or false"),
                           ("{PodOverhead: false}", "locked to true")):
        rc, res, _ = playbook("""
        - name: gates
          katafleet.kata.kata_feature_gates:
            path: {path}
            gates: {gates}
            kubernetes_version: "1.25"
        """.format(path=path, gates=gates))
        assert rc != 0 and message in res[0]["msg"] and path in res[0]["msg"], res[0]["msg"]
        assert sha(path) == digest
    broken = tmp_path / "kube-apiserver.yaml"
    broken.write_text(open(MANIFEST).read().replace("spec:\n", "spec: [\n", 1))
    digest = sha(str(broken))
    rc, res, _ = playbook("""
    - name: gates
      katafleet.kata.kata_feature_gates:
        path: {path}
        kind: apiserver_manifest
        gates: {{PodOverhead: true}}
        kubernetes_version: "1.17"
    """.format(path=broken))
    assert rc != 0 and "not valid YAML" in res[0]["msg"] and sha(str(broken)) == digest


# what site.yml's node plays publish on each Kata node (here: localhost is the only node)
NODE_FACTS = "{set_fact: {katafleet_containerd: {handler_names: [kata-qemu, kata-clh]}}}"


def runtimeclass_play(tmp_path, version, extra="", pre_tasks="[%s]" % NODE_FACTS):
    pb = tmp_path / "rc.yml"
    pb.write_text("""
- hosts: localhost
  gather_facts: false
  vars:
    kata_runtimeclass_kubernetes_version: "{version}"
    kata_runtimeclass_apply: false
    kata_runtimeclass_output_dir: {out}
    kata_runtimeclass_legacy_validator_path: {legacy}
    kata_runtimeclass_nodes_group: all
{extra}
  pre_tasks: {pre_tasks}
  roles:
    - katafleet.kata.kata_runtimeclass
""".format(version=version, out=tmp_path / "out", legacy=os.path.join(ROOT, ".venv", "kubernetes-validate-1.24"),
           extra=extra, pre_tasks=pre_tasks))
    import subprocess
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=" + os.path.join(VENV_BIN, "python"), str(pb)],
                          cwd=ROOT, env=ansible_env(tmp_path), capture_output=True, text=True)
    return proc.returncode, parse_results(proc)[0]


def test_runtimeclass_role_renders_and_validates(tmp_path):
    for version, api in (("1.17", "node.k8s.io/v1beta1"), ("1.29", "node.k8s.io/v1")):
        rc, res = runtimeclass_play(tmp_path, version)
        assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
        objs = list(yaml.safe_load_all(open(tmp_path / "out" / "runtimeclasses.yaml")))
        assert [(o["apiVersion"], o["handler"], o["overhead"]["podFixed"]["memory"]) for o in objs] == \
            [(api, "kata-qemu", "320Mi"), (api, "kata-clh", "130Mi")]
        check = [r for r in res if "kata_runtimeclass : Validate" in r["_task"]][0]
        if version == "1.17":
            assert any("PodOverhead is alpha" in w for w in check["warnings_list"])


def test_runtimeclass_role_refuses_versions_without_overhead(tmp_path):
    rc, res = runtimeclass_play(tmp_path, "1.15")
    assert rc != 0
    failed = [r for r in res if r.get("failed")][0]
    assert "cannot carry overhead before Kubernetes 1.16" in failed["msg"]
    assert not (tmp_path / "out").exists()


def test_runtimeclass_role_warns_on_small_overhead(tmp_path):
    # what site.yml's kata_config role registers on each Kata node
    rc, res = runtimeclass_play(tmp_path, "1.29",
                                pre_tasks="[%s, {set_fact: {katafleet_kata: {effective: {default_memory: 4096, "
                                          "sandbox_cgroup_only: true}}}}]" % NODE_FACTS)
    assert rc == 0
    check = [r for r in res if "kata_runtimeclass : Validate" in r["_task"]][0]
    assert len(check["warnings_list"]) == 2 and all("4206 MiB" in w for w in check["warnings_list"])


def test_runtimeclass_role_fails_clearly_without_node_facts_or_records(tmp_path):
    """The play on localhost must not fall back to another role's variables: with no published facts and no
    intended-state record on the node, it fails and says what to do."""
    rc, res = runtimeclass_play(tmp_path, "1.29", pre_tasks="[]",
                                extra="    kata_runtimeclass_record_dir: %s" % (tmp_path / "no-records"))
    assert rc != 0
    failed = [r for r in res if r.get("failed")][0]
    assert "No handler list for localhost" in failed["msg"] and "kata_runtimeclass_classes" in failed["msg"]
    assert not (tmp_path / "out").exists()


def test_runtimeclass_role_reads_the_intended_state_record(tmp_path):
    """A run without the node play (--tags kubernetes, a sliced run) finds the handlers in the node's record."""
    records = tmp_path / "records"
    records.mkdir()
    (records / "node.json").write_text(json.dumps({
        "schema": 1, "part": "node", "containerd": {"handler_names": ["kata-fc"]},
        "kata": {"effective": {"default_memory": 2048, "sandbox_cgroup_only": True}}}))
    rc, res = runtimeclass_play(tmp_path, "1.29", pre_tasks="[]", extra="    kata_runtimeclass_record_dir: %s" % records)
    assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
    objs = list(yaml.safe_load_all(open(tmp_path / "out" / "runtimeclasses.yaml")))
    assert [(o["handler"], o["overhead"]["podFixed"]["memory"]) for o in objs] == [("kata-fc", "130Mi")]
