"""End to end on the lab: ansible-playbook over SSH to real sshd nodes, real containerd, real qemu and
virtiofsd in real cgroups (v1 and v2 nodes)."""

import os
import re
import subprocess

import pytest

from helpers import PLAYBOOKS, ROOT, VENV_BIN, adhoc, ansible_env, run_pb, per_node as changed
from katafleet_lab.lab import Lab

SITE = os.path.join(PLAYBOOKS, "site.yml")
TESTINFRA = os.path.join(ROOT, "roles", "kata_verify", "files", "testinfra")
UID = "%08d-0000-4000-8000-%012d"


@pytest.fixture(scope="module")
def rolled_out(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollout")
    first = run_pb(lab, tmp, SITE)
    second = run_pb(lab, tmp, SITE)
    return first, second


def test_rollout_over_ssh_then_idempotent(rolled_out, lab):
    (rc1, res1, stats1), (rc2, res2, stats2) = rolled_out
    assert rc1 == 0, [r.get("msg") for r in res1 if r.get("failed")]
    assert set(changed(stats1)) == {"node1", "node2", "node3"} and all(c > 0 for c in changed(stats1).values())
    assert rc2 == 0 and changed(stats2) == {"node1": 0, "node2": 0, "node3": 0}
    restarts = [r for r in res1 if r["_task"].endswith("Restart containerd (new config)")]
    assert len(restarts) == 3 and not [r for r in res2 if r["_task"].endswith("Restart containerd (new config)")]


def test_each_node_has_its_own_files_and_containerd(rolled_out, lab):
    for node in lab.node_names():
        upper = os.path.join(lab.dir, "nodes", node, "upper", "etc")
        assert os.path.exists(os.path.join(upper, "kata-containers", "configuration.toml"))
        assert "kata-qemu" in open(os.path.join(upper, "containerd", "config.toml")).read()
        out = lab.ssh(node, "hostname; ctr --address /run/containerd/containerd.sock plugins ls").stdout
        assert out.splitlines()[0] == node
        assert re.search(r"^io\.containerd\.grpc\.v1\s+cri\s.*\sok\s*$", out, re.M)
    mode = lab.ssh("node3", "stat -f -c %T /sys/fs/cgroup").stdout.strip()
    assert mode == "cgroup2fs"
    assert lab.ssh("node1", "stat -f -c %T /sys/fs/cgroup").stdout.strip() == "tmpfs"


def test_kubernetes_files_on_the_nodes(rolled_out, lab):
    """The lab's kubeadm 1.29 files: the stale PodOverhead=true in kubeadm-flags.env is gone everywhere (it would stop
    a 1.26+ kubelet); the apiserver manifest and kubelet config needed nothing."""
    for node in lab.node_names():
        flags = lab.ssh(node, "cat /var/lib/kubelet/kubeadm-flags.env").stdout
        assert "PodOverhead" not in flags and "--container-runtime=remote" in flags
        kubelet = os.path.join(ROOT, "tests", "data", "fixtures", "kubernetes", "kubelet-config.v1.20.kubeadm.yaml")
        assert lab.ssh(node, "cat /var/lib/kubelet/config.yaml").stdout == open(kubelet).read()
    manifest = os.path.join(ROOT, "tests", "data", "fixtures", "kubernetes", "kube-apiserver.v1.29.0.kubeadm.yaml")
    assert lab.ssh("node1", "cat /etc/kubernetes/manifests/kube-apiserver.yaml").stdout == open(manifest).read()


def test_drift_is_reported_in_check_mode_and_corrected(rolled_out, lab, tmp_path):
    path = "/etc/kata-containers/configuration.toml"
    lab.ssh("node2", "sed -i 's/^sandbox_cgroup_only = true/sandbox_cgroup_only = false/' %s" % path)
    before = lab.ssh("node2", "sha256sum %s" % path).stdout
    rc, res, stats = run_pb(lab, tmp_path, os.path.join(PLAYBOOKS, "drift.yml"), "--diff")
    assert rc == 0 and changed(stats) == {"node1": 0, "node2": 1, "node3": 0}
    cfg = [r for r in res if r["_host"] == "node2" and r["_task"].endswith("Kata configuration (/etc/kata-containers/configuration.toml)")][0]
    assert cfg["changes"] == [{"key": "runtime.sandbox_cgroup_only", "before": False, "after": True}]
    assert lab.ssh("node2", "sha256sum %s" % path).stdout == before  # check mode wrote nothing
    rc, _res, stats = run_pb(lab, tmp_path, SITE, "--limit", "node2")
    assert rc == 0 and changed(stats)["node2"] >= 1
    assert lab.ssh("node2", "grep '^sandbox_cgroup_only' %s" % path).stdout == "sandbox_cgroup_only = true\n"


def sandbox(lab, node, sb, idx, *extra):
    res = lab.ssh(node, "katalab-sandbox up %s %s %s" % (sb, UID % (idx, idx), " ".join(extra)), check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def sandboxes_down(lab):
    for node in lab.node_names():
        lab.ssh(node, "katalab-sandbox down --all")


def verify(lab, tmp_path, node, args=""):
    return adhoc(lab, tmp_path, node, "katafleet.kata.kata_verify", args)


@pytest.mark.parametrize("only", [True, False], ids=["sandbox_cgroup_only=true", "sandbox_cgroup_only=false"])
def test_verification_passes_where_placement_is_right(rolled_out, lab, tmp_path, only):
    """Both modes on v1 (node1, node2) and v2 (node3): the node's config decides, the simulator follows it.
    The mode is set the way operators do it, in group_vars beside the inventory; testinfra reads the nodes'
    intended-state records that site.yml wrote."""
    group_vars = os.path.join(lab.dir, "group_vars")
    os.makedirs(group_vars, exist_ok=True)
    with open(os.path.join(group_vars, "kata_nodes.yml"), "w") as handle:
        handle.write("kata_config_sandbox_cgroup_only: %s\n" % str(only).lower())
    try:
        rc, _res, _stats = run_pb(lab, tmp_path, SITE)
        assert rc == 0
        for i, node in enumerate(lab.node_names(), start=1):
            sandbox(lab, node, "ok%d" % i, i)
            sandbox(lab, node, "okg%d" % i, 10 + i, "--qos guaranteed")
        rc, res, stats = run_pb(lab, tmp_path, os.path.join(PLAYBOOKS, "verify.yml"),
                                "-e", "kata_verify_min_sandboxes=2")
        assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
        reports = [r for r in res if r["_task"].endswith("Verify cgroup placement of every Kata sandbox")]
        assert len(reports) == 3
        for r in reports:
            s = r["summary"]
            assert s["sandboxes"] == 2 and s["sandbox_cgroup_only"] is only and s["misplaced"] == 0
            assert s["threads_checked"] >= 2 * 9  # shim, 2 virtiofsd (3 threads), qemu (>= 5 threads incl. 2 vCPUs)
            assert s["cgroup_version"] == (2 if r["_host"] == "node3" else 1)
        infra = [r for r in res if r["_task"].endswith("Run the testinfra suite against kata_nodes")][0]
        assert infra["rc"] == 0 and "15 passed" in infra["stdout"]
    finally:
        sandboxes_down(lab)
        os.unlink(os.path.join(group_vars, "kata_nodes.yml"))
        run_pb(lab, tmp_path, SITE)  # back to the defaults (true)


@pytest.mark.parametrize("node", ["node1", "node3"])
def test_sandbox_started_with_the_other_mode_fails(rolled_out, lab, tmp_path, node):
    try:
        sandbox(lab, node, "wrongmode", 7, "--mode false")  # the node's config says true
        rc, out = verify(lab, tmp_path, node)
        assert rc != 0 and out["summary"]["misplaced"] > 0
        roles = {(p["sandbox"], p["role"]) for p in out["problems"]}
        assert ("wrongmode", "shim") in roles and ("wrongmode", "virtiofsd") in roles
        assert "/kata_overhead/wrongmode" in out["msg"] and "kata_wrongmode" in out["msg"]
    finally:
        sandboxes_down(lab)


def test_one_vcpu_thread_moved_by_hand_fails(rolled_out, lab, tmp_path):
    try:
        state = sandbox(lab, "node1", "vcpumoved", 8)
        tid = re.search(r'"vcpu_tids": \[(\d+)', state).group(1)
        lab.ssh("node1", "for c in /sys/fs/cgroup/*/; do [ -f $c/tasks ] && echo %s > $c/tasks; done; true" % tid)
        rc, out = verify(lab, tmp_path, "node1")
        assert rc != 0 and len(out["problems"]) == 1
        p = out["problems"][0]
        assert p["role"] == "vcpu" and p["tid"] == int(tid) and p["actual"] == "/" and p["comm"].startswith("CPU 0/")
        assert p["expected"].endswith("/kata_vcpumoved") and "CPU 0/" in out["msg"]
    finally:
        sandboxes_down(lab)


@pytest.mark.parametrize("node", ["node2", "node3"])
def test_virtiofsd_in_containerd_service_cgroup_fails(rolled_out, lab, tmp_path, node):
    try:
        sandbox(lab, node, "vfsleak", 9)
        lab.ssh(node, "d=/system.slice/containerd.service; "
                      "if [ \"$(stat -f -c %T /sys/fs/cgroup)\" = cgroup2fs ]; then roots=/sys/fs/cgroup; "
                      "else roots=$(ls -d /sys/fs/cgroup/*/); fi; "
                      "for r in $roots; do mkdir -p $r$d; [ -f $r/cpuset.cpus ] && "
                      "{ for f in cpuset.cpus cpuset.mems; do cat $r/$f > $r/system.slice/$f; cat $r/$f > $r$d/$f; done; }; "
                      "for p in $(pgrep -x virtiofsd); do echo $p > $r$d/cgroup.procs; done; done")
        rc, out = verify(lab, tmp_path, node)
        assert rc != 0
        vfs = [p for p in out["problems"] if p["role"] == "virtiofsd"]
        assert vfs and all(p["actual"] == "/system.slice/containerd.service" for p in vfs)
        assert all("runc-style place" in p["note"] for p in vfs)
        assert not [p for p in out["problems"] if p["role"] != "virtiofsd"]
    finally:
        sandboxes_down(lab)
        lab.ssh(node, "for r in /sys/fs/cgroup /sys/fs/cgroup/*/; do rmdir $r/system.slice/containerd.service "
                      "$r/system.slice 2>/dev/null; done; true")


def test_vcpu_threads_found_through_qmp_without_thread_names(rolled_out, lab, tmp_path):
    """Without -name ...,debug-threads=on every qemu thread is called qemu-system-x86; the verifier then asks QMP
    query-cpus-fast (as Kata's constrainHypervisor does) and still catches a moved vCPU thread."""
    try:
        state = sandbox(lab, "node2", "qmponly", 11, "--no-thread-names")
        qemu = re.search(r'"qemu_pid": (\d+)', state).group(1)
        comms = lab.ssh("node2", "cat /proc/%s/task/*/comm" % qemu).stdout.split("\n")
        assert "qemu-system-x86" in comms and not [c for c in comms if c.startswith("CPU ")]
        rc, out = verify(lab, tmp_path, "node2")
        assert rc == 0 and out["summary"]["sandboxes"] == 1 and out["problems"] == []
        tid = re.search(r'"vcpu_tids": \[\d+, (\d+)', state).group(1)
        lab.ssh("node2", "for c in /sys/fs/cgroup/*/; do [ -f $c/tasks ] && echo %s > $c/tasks; done; true" % tid)
        rc, out = verify(lab, tmp_path, "node2")
        assert rc != 0 and [(p["role"], p["tid"]) for p in out["problems"]] == [("vcpu", int(tid))]
    finally:
        sandboxes_down(lab)


def test_shim_without_vmm_fails(rolled_out, lab, tmp_path):
    try:
        sandbox(lab, "node1", "novmm", 10, "--no-vmm")
        rc, out = verify(lab, tmp_path, "node1")
        assert rc != 0
        assert [(p["sandbox"], p["role"], p["verdict"]) for p in out["problems"]] == [("novmm", "vmm", "missing")]
    finally:
        sandboxes_down(lab)


def test_containerd_restart_failure_rolls_back(rolled_out, lab, tmp_path):
    """A new config that containerd accepts in `config dump` but that stops the daemon (a required plugin that
    does not exist): the role restores the previous files, restarts, and fails the node with a clear message."""
    before = lab.ssh("node1", "cat /etc/containerd/config.toml").stdout
    rc, res, _stats = run_pb(lab, tmp_path, os.path.join(ROOT, "tests", "lab", "playbooks", "rollback.yml"),
                             "--limit", "node1")
    assert rc != 0
    failed = [r for r in res if r.get("failed") and not r.get("skipped")]
    assert failed[-1]["_task"].endswith("Fail this node, saying what happened")
    msg = failed[-1]["msg"]
    assert "did not come back healthy" in msg and "previous config was restored" in msg and "is running again" in msg
    assert lab.ssh("node1", "cat /etc/containerd/config.toml").stdout == before
    out = lab.ssh("node1", "ctr --address /run/containerd/containerd.sock plugins ls").stdout
    assert re.search(r"^io\.containerd\.grpc\.v1\s+cri\s.*\sok\s*$", out, re.M)


def test_testinfra_suite_directly(rolled_out, lab, tmp_path):
    proc = subprocess.run([os.path.join(VENV_BIN, "python"), "-m", "pytest", TESTINFRA, "-q", "-p",
                           "no:cacheprovider", "--hosts=ansible://kata_nodes", "--ansible-inventory=" + lab.inventory],
                          cwd=ROOT, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "15 passed" in proc.stdout


def test_second_lab_does_not_collide_and_teardown_leaves_nothing(lab):
    other = Lab("pytest2")
    try:
        state = other.up((("node1", "v1"),))
        mine = lab.load_state()
        assert state["bridge"] != mine["bridge"] and state["subnet"] != mine["subnet"]
        assert other.ssh("node1", "hostname").stdout.strip() == "node1"
        assert lab.ssh("node1", "hostname").stdout.strip() == "node1"
        # an interrupted run: the state file is lost, the next bring-up must still clean up
        first_bridge = state["bridge"]
        os.unlink(other.state_file)
        state = other.up((("node1", "v2"),))
        assert other._links() == [state["bridge"], "kf%dn1" % state["index"]]
        assert first_bridge == state["bridge"] or " %s:" % first_bridge not in subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
        assert other.ssh("node1", "stat -f -c %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    finally:
        other.down()
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split("\n")
                if n.startswith("kf-pytest2-")]
    assert other._node_processes() == []
    assert not os.path.exists(other.dir) and other._links() == []
    assert not any(os.path.exists("/sys/fs/cgroup/%s/katafleet-lab/pytest2" % c) for c in ("memory", "cpu", "unified"))
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    assert " %s:" % state["bridge"] not in links and "kf%dn1" % state["index"] not in links
    assert lab.ssh("node2", "hostname").stdout.strip() == "node2"  # the session lab is untouched
