"""kata_prereqs and the kata_prereqs role through ansible-playbook on localhost, every node path under a
temporary root (nothing of this machine's /dev, /etc or /sys is read as node state or written)."""

import os
import subprocess

from helpers import ansible_env, ROOT, VENV_BIN  # noqa: F401

CONF = "etc/modules-load.d/katafleet.conf"


def node(tmp_path):
    root = tmp_path / "node"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.1.0-katafleet-test\n")
    return root


def bare_python(tmp_path, system_site=False):
    """A Python without tomlkit (and, without system site-packages, without yaml)."""
    venv = tmp_path / ("sys-venv" if system_site else "bare")
    cmd = ["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)]
    if system_site:
        cmd.insert(4, "--system-site-packages")
    subprocess.run(cmd, check=True)
    return str(venv / "bin" / "python")


def test_stdlib_only_reports_missing_libraries_check_mode_diff_then_apply_idempotent(playbook, tmp_path):
    root = node(tmp_path)
    python = bare_python(tmp_path)
    task = """
    - name: prereqs
      katafleet.kata.kata_prereqs:
        root: {root}
        hypervisor: remote
        kernel_modules: [vhost_vsock, vhost_net]
    """.format(root=root)
    rc, res, _ = playbook(task, check=True, diff=True, interpreter=python)
    assert rc == 0, res
    r = res[0]
    assert r["missing_libraries"] == ["tomlkit", "yaml"] and r["python"]["executable"].startswith(str(tmp_path))
    assert r["changed"] and r["ready"] and not (root / CONF).exists()
    assert r["diff"]["after"].endswith("vhost_vsock\nvhost_net\n") and r["diff"]["before"] == ""
    assert r["diff"]["after_header"] == "/etc/modules-load.d/katafleet.conf"
    rc, res, _ = playbook(task, interpreter=python)
    assert rc == 0 and res[0]["changed"] and (root / CONF).read_text().endswith("vhost_vsock\nvhost_net\n")
    rc, res, _ = playbook(task, interpreter=python)
    assert rc == 0 and not res[0]["changed"]


def test_node_without_devices_fails_with_one_message_but_persists_and_reports(playbook, tmp_path):
    root = node(tmp_path)
    rc, res, _ = playbook("""
    - name: prereqs
      katafleet.kata.kata_prereqs:
        root: {root}
    """.format(root=root))
    r = res[0]
    assert rc != 0 and r["failed"] and not r["ready"]
    assert r["msg"].startswith("this node cannot run Kata Containers (hypervisor qemu): 2 problems: (1) /dev/kvm is missing")
    assert "(2) /dev/vhost-vsock is missing: load the vhost_vsock kernel module; vhost_vsock skipped (no modprobe" in r["msg"]
    assert [m["state"] for m in r["kernel_modules"]] == ["skipped", "skipped"]
    assert (root / CONF).exists() and r["missing_libraries"] == []


def test_warn_instead_of_fail_for_image_builders(playbook, tmp_path):
    root = node(tmp_path)
    rc, res, _ = playbook("""
    - name: prereqs
      katafleet.kata.kata_prereqs:
        root: {root}
        hypervisor: clh
        on_missing: warn
        load_modules: false
    """.format(root=root))
    r = res[0]
    assert rc == 0 and not r.get("failed") and not r["ready"]
    assert r["problems"] == [r["problems"][0]] and r["problems"][0].startswith("/dev/kvm is missing")
    assert any("cannot run Kata Containers (hypervisor clh): 1 problem: (1) /dev/kvm" in w for w in r["warnings"])
    assert r["kernel_modules"][0]["reason"] == "load_modules is off"


def test_role_installs_tomlkit_only_where_the_module_says_it_is_missing(playbook, tmp_path):
    """Controller mode: tomlkit is unpacked into the node Python's site-packages (a venv under tmp_path);
    the second run finds it and neither packs nor unpacks."""
    root = node(tmp_path)
    python = bare_python(tmp_path, system_site=True)
    assert subprocess.run([python, "-c", "import tomlkit"], capture_output=True).returncode != 0
    task = """
    - name: role
      ansible.builtin.include_role:
        name: katafleet.kata.kata_prereqs
      vars:
        kata_prereqs_root: {root}
        kata_prereqs_hypervisor: remote
        kata_prereqs_tomlkit_install: controller
    """.format(root=root)
    rc, res, _ = playbook(task, interpreter=python)
    assert rc == 0, [(r["_task"], r.get("msg")) for r in res]
    ran = {r["_task"].split(" : ", 1)[-1]: r for r in res}
    check = ran["Check the node's Kata prerequisites and the libraries katafleet's modules import"]
    assert check["missing_libraries"] == ["tomlkit"]
    assert not ran["Pack the controller's tomlkit"].get("skipped")
    assert ran["Unpack tomlkit into the node's site-packages"]["changed"]
    assert ran["Install PyYAML from the distribution"].get("skipped")  # yaml comes from the system site-packages
    assert subprocess.run([python, "-c", "import tomlkit"], capture_output=True).returncode == 0
    rc, res, _ = playbook(task, interpreter=python)
    ran = {r["_task"].split(" : ", 1)[-1]: r for r in res}
    assert rc == 0 and ran["Check the node's Kata prerequisites and the libraries katafleet's modules import"][
        "missing_libraries"] == []
    assert ran["Pack the controller's tomlkit"].get("skipped")
    assert ran["Unpack tomlkit into the node's site-packages"].get("skipped")
    assert not any(r.get("changed") for r in res)


def test_feature_gates_dependency_checks_libraries_only(playbook, tmp_path):
    """Control-plane nodes need not be Kata nodes: kata_feature_gates' kata_prereqs dependency sets
    kata_prereqs_host_checks false, so a host without /dev/kvm passes and no modules-load.d file is written."""
    root = node(tmp_path)
    rc, res, _ = playbook("""
    - name: role
      ansible.builtin.include_role:
        name: katafleet.kata.kata_feature_gates
      vars:
        kata_prereqs_root: {root}
        kata_prereqs_tomlkit_install: none
        kata_feature_gates_apiserver_manifest: {root}/kube-apiserver.yaml
        kata_feature_gates_kubelet_files: []
    """.format(root=root))
    assert rc == 0, [(r["_task"], r.get("msg")) for r in res]
    check = [r for r in res if r["_task"].endswith(" : Check the node's Kata prerequisites and the libraries "
                                                   "katafleet's modules import")]
    assert len(check) == 1 and check[0]["missing_libraries"] == [] and check[0]["ready"]
    assert "devices" not in check[0] and not (root / CONF).exists()
