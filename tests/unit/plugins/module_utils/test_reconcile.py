"""Ownership record, reconcile, uninstall, the running-sandbox guard and the kata-deploy guard, on real
containerd configs validated by the real containerd binary."""

import base64
import json
import os
import shutil
import subprocess
import tomllib

import pytest

from helpers import fixture_path
from katafleet_lab import proctree
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import (
    containerd, feature_gates, kata_config, katadeploy, ownership, reconcile, sandboxes)
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

CTD = shutil.which("containerd")
pytestmark = pytest.mark.skipif(CTD is None, reason="containerd is installed by scripts/setup.sh")
SHIPPED = fixture_path("containerd", "config-debian-shipped-etc-1.6.toml")
DEFAULT = fixture_path("containerd", "config-default-1.6-debian.toml")
SHIM = "/opt/kata/bin/containerd-shim-kata-v2"
QEMU = {"name": "kata-qemu", "runtime_path": SHIM, "config_path": "/etc/kata-containers/configuration.toml"}
CLH = {"name": "kata-clh", "runtime_path": "/opt/kata/bin/containerd-shim-kata-clh-v2"}


def params(path, record, handlers, state="present", **kw):
    p = dict(path=str(path), ownership=str(record), handlers=handlers, state=state, dropin=None, validate=True,
             kata_config="/nonexistent", prune=True, force=False, adopt_kata_deploy=False,
             address="/nonexistent.sock")
    p.update(kw)
    return p


def run(path, record, handlers, proc=None, **kw):
    """One kata_containerd run (what the module does): plan, apply, save the record."""
    r = reconcile.ContainerdRun(params(path, record, handlers, **kw), CTD, None, proc=proc or "/nonexistent-proc")
    plan = r.plan()
    containerd.apply(plan)
    r.save()
    return r, plan


def dump(path):
    proc = subprocess.run([CTD, "--config", str(path), "config", "dump"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.replace(str(path), "CONFIG")


def runtimes(path):
    data = tomllib.loads(open(path).read())
    return sorted(data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"].get("runtimes", {}))


@pytest.fixture
def node(tmp_path):
    cfg = tmp_path / "config.toml"
    shutil.copyfile(SHIPPED, cfg)
    return cfg, tmp_path / "owned.json", dump(cfg)


def test_install_records_exactly_what_was_added_and_uninstall_restores_the_dump(node):
    cfg, record, original = node
    run(cfg, record, [QEMU, CLH])
    rec = json.load(open(record))
    entry = rec["containerd"][str(cfg)]
    # the shipped file defined no runtime: runc was added for CRI's default, and is recorded as added
    assert entry["handlers"] == {"kata-clh": {"before": None}, "kata-qemu": {"before": None}}
    assert entry["added_runtimes"] == ["runc"] and entry["created"] is None
    assert oct(os.stat(record).st_mode & 0o777) == "0o600"
    assert dump(cfg) != original
    r, plan = run(cfg, record, [], state="absent")
    assert r.removed == ["kata-clh", "kata-qemu"] and plan.validated_by.startswith("1.")
    assert dump(cfg) == original
    assert not record.exists()  # nothing owned any more: no katafleet state left behind
    r, plan = run(cfg, record, [], state="absent")  # a second uninstall changes nothing
    assert not plan.changed and not r.record_changed and r.removed == []


def test_reconcile_removes_the_dropped_handler_only(node):
    cfg, record, _original = node
    run(cfg, record, [QEMU, CLH])
    r, plan = run(cfg, record, [QEMU])
    assert r.removed == ["kata-clh"] and plan.changed
    assert runtimes(cfg) == ["kata-qemu", "runc"]
    assert ownership.owned_handlers(json.load(open(record)), str(cfg)) == ["kata-qemu"]
    r, plan = run(cfg, record, [QEMU])
    assert not plan.changed and not r.record_changed
    # without the record (or with prune off) a dropped handler stays, as before
    run(cfg, record, [QEMU, CLH])
    r, plan = run(cfg, record, [QEMU], prune=False)
    assert r.removed == [] and runtimes(cfg) == ["kata-clh", "kata-qemu", "runc"]


def test_a_stanza_that_was_there_before_is_put_back_not_deleted(tmp_path):
    cfg = tmp_path / "config.toml"
    shutil.copyfile(DEFAULT, cfg)
    text = open(cfg).read() + ('\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-qemu]\n'
                               '  runtime_type = "io.containerd.kata.v2"\n  privileged_without_host_devices = false\n')
    cfg.write_text(text)
    original, record = dump(cfg), tmp_path / "owned.json"
    run(cfg, record, [QEMU])
    entry = json.load(open(record))["containerd"][str(cfg)]
    assert entry["handlers"]["kata-qemu"]["before"] == {"runtime_type": "io.containerd.kata.v2",
                                                        "privileged_without_host_devices": False}
    assert entry["added_runtimes"] == []  # runc was defined in the file already
    assert dump(cfg) != original
    r, _plan = run(cfg, record, [], state="absent")
    assert r.removed == [] and runtimes(cfg) == ["kata-qemu", "runc"]
    assert dump(cfg) == original


def test_a_file_katafleet_created_is_deleted_again(tmp_path):
    cfg, record = tmp_path / "etc" / "config.toml", tmp_path / "owned.json"
    run(cfg, record, [QEMU])
    assert json.load(open(record))["containerd"][str(cfg)]["created"]["digest"]
    run(cfg, record, [], state="absent")
    assert not cfg.exists() and not record.exists()


def test_created_file_edited_by_someone_else_is_kept(tmp_path):
    cfg, record = tmp_path / "config.toml", tmp_path / "owned.json"
    run(cfg, record, [QEMU])
    cfg.write_text(open(cfg).read().replace("oom_score = 0", "oom_score = -999"))
    run(cfg, record, [], state="absent")
    assert cfg.exists() and "kata-qemu" not in open(cfg).read() and "oom_score = -999" in open(cfg).read()


def test_check_mode_shape_plan_writes_nothing(node):
    cfg, record, original = node
    r = reconcile.ContainerdRun(params(cfg, record, [QEMU]), CTD, None, proc="/nonexistent")
    plan = r.plan()
    assert plan.changed and r.record_changed and "kata-qemu" in r.record_diff()["after"]
    assert dump(cfg) == original and not record.exists()  # plan() alone never writes


def test_corrupt_record_changes_nothing(node):
    cfg, record, original = node
    record.write_text("{not json")
    with pytest.raises(KatafleetError, match="not valid JSON"):
        run(cfg, record, [QEMU])
    assert dump(cfg) == original


# ---------- running sandboxes ----------

def fake_proc(tmp_path, shims):
    """shims: [(pid, exe, sandbox id)]; the lab's proctree builder writes cmdline/exe like a real shim."""
    root = tmp_path / "proc"
    for pid, exe, sid in shims:
        proctree.write_process(str(root), pid, 1, "containerd-shim", [exe, "-namespace", "k8s.io", "-address",
                                                                      "/run/containerd/containerd.sock", "-id", sid],
                               exe, [(pid, "containerd-shim", "/")])
    proctree.write_process(str(root), 99, 1, "sleep", ["/bin/sleep", "1000"], "/bin/sleep", [(99, "sleep", "/")])
    return str(root)


def test_removal_refused_while_a_sandbox_of_the_handler_runs_unless_forced(node, tmp_path):
    cfg, record, _original = node
    run(cfg, record, [QEMU, CLH])
    proc = fake_proc(tmp_path, [(200, CLH["runtime_path"], "sb-clh")])
    before = open(cfg).read()
    with pytest.raises(reconcile.Refused) as exc:
        run(cfg, record, [QEMU], proc=proc)
    assert "kata-clh: sb-clh (pid 200" in str(exc.value) and "force" in str(exc.value)
    assert exc.value.details["blocked_handlers"] == ["kata-clh"]
    assert open(cfg).read() == before
    # the other handler's removal is not blocked by it
    r, dummy = run(cfg, record, [CLH], proc=proc)
    assert r.removed == ["kata-qemu"]
    run(cfg, record, [QEMU, CLH])
    r, dummy = run(cfg, record, [QEMU], proc=proc, force=True)
    assert r.removed == ["kata-clh"] and any("sb-clh" in w for w in r.warnings)
    # uninstall is guarded the same way
    proc2 = fake_proc(tmp_path / "2", [(300, SHIM, "sb-q")])
    with pytest.raises(reconcile.Refused, match="kata-qemu: sb-q"):
        run(cfg, record, [], state="absent", proc=proc2)


def test_shared_shim_binary_counts_for_every_handler_unless_containerd_knows_the_sandbox(tmp_path):
    proc = fake_proc(tmp_path, [(200, SHIM, "sb1")])
    defs = {"kata-qemu": {"runtime_type": "io.containerd.kata.v2", "runtime_path": SHIM},
            "kata-clh": {"runtime_type": "io.containerd.kata.v2", "runtime_path": SHIM},
            "runc": {"runtime_type": "io.containerd.runc.v2", "runtime_path": None}}
    found = sandboxes.running(defs, proc=proc)
    assert [(s["sandbox"], s["handlers"]) for s in found] == [("sb1", ["kata-clh", "kata-qemu"])]
    assert "shared by kata-clh, kata-qemu" in found[0]["source"]

    meta = {"Version": "v1", "Metadata": {"ID": "sb1", "RuntimeHandler": "kata-qemu"}}
    info = {"ID": "sb1", "Runtime": {"Name": "io.containerd.kata.v2"}, "Extensions": {
        sandboxes.CRI_SANDBOX_EXTENSION: {"type_url": "github.com/containerd/cri/pkg/store/sandbox/Metadata",
                                          "value": base64.b64encode(json.dumps(meta).encode()).decode()}}}
    calls = []

    def ctr(args):
        calls.append(args)
        return (0, json.dumps(info)) if args[-1] == "sb1" else (1, "")
    found = sandboxes.running(defs, proc=proc, ctr_run=ctr)
    assert found[0]["handlers"] == ["kata-qemu"] and found[0]["source"] == "containerd's CRI record"
    assert calls == [["-n", "k8s.io", "containers", "info", "sb1"]]
    assert sandboxes.blocking(found, ["kata-clh"]) == {}


def test_shim_found_by_name_from_runtime_type_without_runtime_path(tmp_path):
    proc = fake_proc(tmp_path, [(200, "/usr/local/bin/containerd-shim-kata-qemu-v2", "sb1"),
                                (201, "/usr/bin/containerd-shim-runc-v2", "sb2")])
    defs = {"kata-qemu": {"runtime_type": "io.containerd.kata-qemu.v2", "runtime_path": None},
            "runc": {"runtime_type": "io.containerd.runc.v2", "runtime_path": None}}
    found = {s["sandbox"]: s["handlers"] for s in sandboxes.running(defs, proc=proc)}
    assert found == {"sb1": ["kata-qemu"], "sb2": ["runc"]}


# ---------- kata-deploy ----------

def test_kata_deploy_traces_are_refused_and_can_be_adopted(node, tmp_path):
    cfg, record, _original = node
    dropin = "/opt/kata/containerd/config.d/kata-deploy.toml"
    text = open(cfg).read().replace("version = 2", 'version = 2\nimports = ["%s"]' % dropin, 1) + (
        '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-qemu]\n'
        '  runtime_type = "io.containerd.kata-qemu.v2"\n'
        '  runtime_path = "/opt/kata/bin/containerd-shim-kata-v2"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-qemu.options]\n'
        '  ConfigPath = "/opt/kata/share/defaults/kata-containers/runtimes/qemu/configuration-qemu.toml"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n')
    cfg.write_text(text.replace('imports = ["%s"]\n' % dropin, ""))  # the import would dangle here
    (tmp_path / "config.toml.kata-deploy-created").write_text("")
    with pytest.raises(reconcile.Refused) as exc:
        run(cfg, record, [QEMU])
    msg = str(exc.value)
    assert "config.toml.kata-deploy-created: kata-deploy's marker" in msg
    assert "handler kata-qemu points at kata-deploy's per-shim config" in msg
    assert "runtime/containerd.rs" in msg and "adopt_kata_deploy" in msg
    assert open(cfg).read() == text.replace('imports = ["%s"]\n' % dropin, "") and not record.exists()
    found = katadeploy.containerd_findings(str(cfg), text)
    assert any("imports %s" % dropin in f for f in found)
    # adoption: katafleet takes the handler over (uninstall then removes it) and stops complaining
    r, _plan = run(cfg, record, [QEMU], adopt_kata_deploy=True)
    rec = json.load(open(record))
    assert rec["containerd"][str(cfg)]["handlers"]["kata-qemu"] == {"before": None}
    assert len(rec["adopted"]["containerd"]) == 2
    r, plan = run(cfg, record, [QEMU])
    assert not plan.changed
    run(cfg, record, [], state="absent")
    assert runtimes(cfg) == ["runc"]


def test_kata_deploy_kata_config_detected(tmp_path):
    d = tmp_path / "share" / "defaults" / "kata-containers"
    (d / "runtimes" / "qemu" / "config.d").mkdir(parents=True)
    real = d / "runtimes" / "qemu" / "configuration-qemu.toml"
    real.write_text("# " + katadeploy.WARNING_HEADER + "\n[hypervisor.qemu]\n")
    (d / "runtimes" / "qemu" / "config.d" / "20-debug.toml").write_text("")
    (d / "configuration-qemu.toml").symlink_to("runtimes/qemu/configuration-qemu.toml")
    found = katadeploy.kata_findings(str(d / "configuration-qemu.toml"))
    assert len(found) == 3 and "per-shim config directory" in found[0] and "20-debug.toml" in found[2]
    with pytest.raises(reconcile.Refused, match="kata_config_adopt_kata_deploy"):
        reconcile.guard_kata(None, str(d / "configuration-qemu.toml"), False)
    plain = tmp_path / "etc.toml"
    plain.write_text("[hypervisor.qemu]\n")
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.d" / "20-debug.toml").write_text("")  # a common name, alone no evidence
    assert katadeploy.kata_findings(str(plain)) == []
    # a copy katafleet created from kata-deploy's file carries the header but is katafleet's
    assert katadeploy.kata_findings(str(real), owned_paths=[str(real)]) == []


# ---------- Kata files and feature gates ----------

def test_kata_files_and_gates_recorded_and_removed(tmp_path):
    record_path = str(tmp_path / "owned.json")
    rec = ownership.load(record_path)
    src = fixture_path("kata", "configuration-qemu.toml-rendered-main-7c6ba40c-prefix-opt-kata")
    etc = tmp_path / "etc" / "configuration.toml"
    plan = kata_config.plan(path=str(etc), source=src, options={"default_memory": 2048})
    kata_config.apply(plan)
    reconcile.record_kata(rec, plan, source=src)
    kubelet = tmp_path / "config.yaml"
    text = open(fixture_path("kubernetes", "kubelet-config.v1.20.kubeadm.yaml")).read()
    kubelet.write_text(text)
    kind, new, _msgs = feature_gates.plan(text, str(kubelet), {"PodOverhead": True}, (1, 17))
    assert reconcile.gates_set(text, new, kind) == {"PodOverhead": True}
    kubelet.write_text(new)
    ownership.record_gate(rec, str(kubelet), "PodOverhead", True, "1.17", kind)
    ownership.save(record_path, rec)
    run1 = reconcile.UninstallRun(record_path, ["kata_config", "feature_gates"])
    steps = run1.plan()
    assert [(s[0], s[2] is None) for s in steps] == [(str(etc), True), (str(kubelet), False)]
    assert os.path.exists(etc)  # plan() wrote nothing
    run1.apply()
    assert not etc.exists() and open(kubelet).read() == text and not os.path.exists(record_path)
    run2 = reconcile.UninstallRun(record_path, ["kata_config", "feature_gates"])
    assert run2.plan() == [] and not run2.changed


def test_a_gate_changed_since_is_left_alone(tmp_path):
    record_path = str(tmp_path / "owned.json")
    kubelet = tmp_path / "config.yaml"
    kubelet.write_text(open(fixture_path("kubernetes", "kubelet-config.v1.20.kubeadm.yaml")).read()
                       + "featureGates:\n  PodOverhead: false\n")
    rec = ownership.load(record_path)
    ownership.record_gate(rec, str(kubelet), "PodOverhead", True, "1.17", "kubelet_config")
    ownership.save(record_path, rec)
    r = reconcile.UninstallRun(record_path, ["feature_gates"])
    assert r.plan() == [] and "left alone" in r.messages[0]
