"""Expected cgroup paths and the verifier on simulated /proc trees, including what the lab cannot build:
the systemd cgroup driver's slices (DOMAIN.md section 5; KC docs/design/host-cgroups.md)."""

import pytest

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import cgroups
from katafleet_lab import proctree

UID = "8a1b2c3d-0000-4000-8000-0000000000aa"
SB = "f" * 64


def test_pod_sandbox_paths_per_driver_and_qos():
    assert cgroups.pod_sandbox_cgroup("cgroupfs", SB, UID, "burstable") == "/kubepods/burstable/pod%s/kata_%s" % (UID, SB)
    assert cgroups.pod_sandbox_cgroup("cgroupfs", SB, UID, "guaranteed") == "/kubepods/pod%s/kata_%s" % (UID, SB)
    uid_ = UID.replace("-", "_")
    assert cgroups.pod_sandbox_cgroup("systemd", SB, UID, "besteffort") == (
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope" % (uid_, SB))
    assert cgroups.pod_sandbox_cgroup("systemd", SB, UID, "guaranteed") == (
        "/kubepods.slice/kubepods-pod%s.slice/cri-containerd-%s.scope" % (uid_, SB))
    assert cgroups.overhead_cgroup(SB) == "/kata_overhead/" + SB


@pytest.mark.parametrize("driver", ["cgroupfs", "systemd"])
@pytest.mark.parametrize("qos", ["guaranteed", "burstable", "besteffort"])
def test_match_pod_round_trips(driver, qos):
    path = cgroups.pod_sandbox_cgroup(driver, SB, UID, qos)
    assert cgroups.match_pod(path, SB) == (driver, qos, UID)
    assert cgroups.match_pod(path, "other") is None
    assert cgroups.match_pod("/system.slice/containerd.service", SB) is None


@pytest.mark.parametrize("only,version,role,expected", [
    (True, 1, "shim", "pod"), (True, 1, "vmm", "pod"), (True, 1, "virtiofsd", "pod"), (True, 1, "vcpu", "pod"),
    (True, 2, "vmm", "pod"),
    (False, 1, "shim", "overhead"), (False, 1, "vmm", "overhead"), (False, 1, "virtiofsd", "overhead"),
    (False, 1, "vcpu", "pod"),
    # cgroup v2: the whole VMM follows its vCPU threads into the pod cgroup (KC issue #4886)
    (False, 2, "vmm", "pod"), (False, 2, "vcpu", "pod"), (False, 2, "shim", "overhead"),
])
def test_expected_per_mode_version_role(only, version, role, expected):
    got = cgroups.expected_for(role, only, version, "cgroupfs", SB, ("burstable", UID))
    want = cgroups.pod_sandbox_cgroup("cgroupfs", SB, UID, "burstable") if expected == "pod" else cgroups.overhead_cgroup(SB)
    assert got == want


def test_cgroup_version_from_the_last_mount():
    mounts = ("tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
              "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
    assert cgroups.cgroup_version(mounts) == 2
    assert cgroups.cgroup_version(mounts.rsplit("cgroup2 /sys", 1)[0]) == 1


def run(tmp_path, only, version, sandboxes, driver="auto"):
    root = str(tmp_path / "proc")
    for i, (sb, places, kw) in enumerate(sandboxes):
        proctree.write_sandbox(root, 100 + 20 * i, sb, places, version, **kw)
    return cgroups.verify(only, version, proc_root=root, driver=driver, use_qmp=False)


def places(pod, other=None, **override):
    d = {"shim": pod, "virtiofsd": pod, "vmm": pod, "vcpu": pod}
    if other:
        d.update(shim=other, virtiofsd=other, vmm=other)
    d.update(override)
    return d


@pytest.mark.parametrize("qos", ["guaranteed", "burstable"])
def test_systemd_driver_true_mode_passes(tmp_path, qos):
    pod = cgroups.pod_sandbox_cgroup("systemd", SB, UID, qos)
    rep = run(tmp_path, True, 2, [(SB, places(pod), {})])
    assert rep["ok"] and rep["summary"]["sandboxes"] == 1 and rep["summary"]["threads_checked"] == 9


def test_systemd_driver_escape_to_containerd_service_is_flagged(tmp_path):
    """KC PR #13338: under the systemd driver virtiofsd and the VMM leaked into containerd.service."""
    pod = cgroups.pod_sandbox_cgroup("systemd", SB, UID, "burstable")
    leak = "/system.slice/containerd.service"
    rep = run(tmp_path, True, 2, [(SB, places(pod, virtiofsd=leak, vmm=leak), {})])
    bad = {(p["role"], p["actual"]) for p in rep["problems"]}
    assert bad == {("virtiofsd", leak), ("vmm", leak)}
    assert all("runc-style place" in p["note"] for p in rep["problems"])
    assert all(p["expected"] == pod for p in rep["problems"])


def test_systemd_driver_false_mode_is_unsupported(tmp_path):
    pod = cgroups.pod_sandbox_cgroup("systemd", SB, UID, "burstable")
    rep = run(tmp_path, False, 1, [(SB, places(pod, other=cgroups.overhead_cgroup(SB)), {})])
    assert [p["verdict"] for p in rep["problems"]] == ["unsupported"]
    assert "#2963" in rep["problems"][0]["note"]


def test_v1_false_mode_per_thread_and_per_controller(tmp_path):
    pod = cgroups.pod_sandbox_cgroup("cgroupfs", SB, UID, "besteffort")
    over = cgroups.overhead_cgroup(SB)
    rep = run(tmp_path, False, 1, [(SB, places(pod, other=over), {})])
    assert rep["ok"], rep["problems"]
    # one vCPU thread correct in every controller but memory: reported with the controller named
    rep = run(tmp_path / "b", False, 1, [(SB, places(pod, other=over, vcpu={"": pod, "memory": over}), {})])
    assert {(p["role"], p["note"]) for p in rep["problems"]} == {("vcpu", "controllers: memory")}
    assert len(rep["problems"]) == 2  # both vCPU threads


def test_other_mode_is_reported_with_pod_unknown(tmp_path):
    over = cgroups.overhead_cgroup(SB)
    rep = run(tmp_path, True, 1, [(SB, places(over), {})])  # everything in kata_overhead, config says true
    assert rep["summary"]["misplaced"] == 9
    assert all(p["expected"].startswith("/kubepods[/<qos>]/pod*/kata_") for p in rep["problems"])


def test_missing_vmm_and_virtiofsd_and_orphans(tmp_path):
    pod = cgroups.pod_sandbox_cgroup("cgroupfs", SB, UID, "burstable")
    rep = run(tmp_path, True, 1, [(SB, places(pod), {"vmm": False}), ("b" * 64, places(pod), {"virtiofsd": False})])
    verdicts = sorted((p["sandbox"][:1], p["role"], p["verdict"]) for p in rep["problems"])
    # the second sandbox's threads are in the first sandbox's pod cgroup: misplaced as well
    assert ("f", "vmm", "missing") in verdicts and ("b", "virtiofsd", "missing") in verdicts
    root = str(tmp_path / "orphan")
    proctree.write_process(root, 50, 1, "qemu-system-x86", ["/usr/bin/qemu-system-x86_64"], "/usr/bin/qemu-system-x86_64",
                           [(50, "qemu-system-x86", "/")])
    rep = cgroups.verify(True, 1, proc_root=root, use_qmp=False)
    assert [(p["role"], p["verdict"]) for p in rep["problems"]] == [("vmm", "orphan")]


def test_runc_shim_and_impostors_are_not_kata(tmp_path):
    root = str(tmp_path / "proc")
    proctree.write_process(root, 10, 1, "containerd-shim", ["/usr/bin/containerd-shim-runc-v2", "-id", "x"],
                           "/usr/bin/containerd-shim-runc-v2", [(10, "containerd-shim", "/system.slice/containerd.service")])
    proctree.write_process(root, 11, 1, "sleep", ["containerd-shim-kata-v2"], "/usr/bin/sleep", [(11, "sleep", "/")])
    rep = cgroups.verify(True, 1, proc_root=root, use_qmp=False)
    assert rep["summary"]["sandboxes"] == 0 and rep["ok"]


def test_table_is_readable():
    rows = [{"sandbox": SB, "role": "vcpu", "pid": 5, "tid": 7, "comm": "CPU 0/KVM", "verdict": "misplaced",
             "expected": "/kubepods/pod1/kata_x", "actual": "/", "note": "controllers: memory"}]
    table = cgroups.format_table(rows)
    assert table.splitlines()[0].split()[:4] == ["SANDBOX", "ROLE", "PID", "TID"]
    assert "CPU 0/KVM" in table and "(controllers: memory)" in table
