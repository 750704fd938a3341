"""The collection as users get it: `ansible-galaxy collection build`, installed offline into an empty
collections path, used from a directory outside the checkout by FQCN only: every module ad hoc on
localhost, and a rollout of lab nodes both through the shipped playbook and through a playbook of the
user's own."""

import json
import os
import subprocess
import tarfile

import pytest

from helpers import ROOT, VENV_BIN
from katafleet_lab.lab import Lab

MODULES = ["kata_config", "kata_containerd", "kata_feature_gates", "kata_prereqs", "kata_runtimeclass", "kata_uninstall",
           "kata_verify"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collection")
    out = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp),
                          ROOT], capture_output=True, text=True, cwd=tmp, check=False)
    assert out.returncode == 0, out.stderr
    tarball = [str(tmp / n) for n in os.listdir(tmp) if n.endswith(".tar.gz")]
    assert len(tarball) == 1
    names = tarfile.open(tarball[0]).getnames()
    colls = tmp / "collections"
    (tmp / "empty.cfg").write_text("[defaults]\n")
    out = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p",
                          str(colls), tarball[0]], capture_output=True, text=True, cwd=tmp,
                         env=dict(os.environ, ANSIBLE_CONFIG=str(tmp / "empty.cfg"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false"), check=False)
    assert out.returncode == 0, out.stderr
    work = tmp / "user"
    work.mkdir()
    # an operator's directory: no ansible.cfg of the checkout, only the installed collection
    # (the checkout's venv also has the checkout on sys.path, for the tests' imports: not scanned here)
    (work / "ansible.cfg").write_text("[defaults]\ncollections_path = %s\ncollections_scan_sys_path = false\n"
                                      "host_key_checking = True\n"
                                      "local_tmp = %s\n[ssh_connection]\npipelining = True\n" % (colls, work / "tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1",
               PWD=str(work), PATH=VENV_BIN + os.pathsep + env.get("PATH", ""))
    return {"names": names, "colls": colls, "work": work, "env": env}


def run(installed, *cmd):
    return subprocess.run([os.path.join(VENV_BIN, cmd[0])] + list(cmd[1:]), capture_output=True, text=True,
                          cwd=installed["work"], env=installed["env"], check=False)


def test_tarball_holds_the_collection_and_not_the_lab(installed):
    names = installed["names"]
    for must in ("MANIFEST.json", "meta/runtime.yml", "LICENSE", "playbooks/site.yml",
                 "plugins/module_utils/katafleet/kata_config.py", "roles/kata_verify/files/testinfra/test_kata_node.py"):
        assert must in names or "./" + must in names or any(n.endswith("/" + must) for n in names), must
    for never in ("lab/", "bench/", ".ansible/", ".venv/", "tests/", "scripts/", "inventories/lab/", "ansible.cfg"):
        assert not [n for n in names if n.startswith(never)], never


def test_installed_collection_is_the_one_ansible_finds(installed):
    out = run(installed, "ansible-galaxy", "collection", "list", "katafleet.kata", "--format", "json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert list(found) == [str(installed["colls"] / "ansible_collections")], found


@pytest.mark.parametrize("module", MODULES)
def test_every_module_runs_ad_hoc_by_fqcn(installed, module, tmp_path):
    kubelet = tmp_path / "config.yaml"
    kubelet.write_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    args = {
        "kata_config": {"path": str(tmp_path / "configuration.toml"), "default_memory": 2048, "source": os.path.join(
            ROOT, "tests", "data", "fixtures", "kata", "configuration-qemu.toml-rendered-main-7c6ba40c-prefix-opt-kata")},
        "kata_containerd": {"path": str(tmp_path / "containerd.toml"), "handlers": [{"name": "kata-qemu"}], "validate": False},
        "kata_feature_gates": {"path": str(kubelet), "gates": {"PodOverhead": True}, "kubernetes_version": "1.17"},
        "kata_prereqs": {"root": str(tmp_path), "on_missing": "warn"},
        "kata_runtimeclass": {"kubernetes_version": "1.29", "classes": ["kata-qemu"]},
        "kata_uninstall": {"ownership": str(tmp_path / "owned.json"), "backup_dir": str(tmp_path / "backups")},
        "kata_verify": {"min_sandboxes": 0, "fail_on_problems": False, "sandbox_cgroup_only": True},
    }[module]
    out = run(installed, "ansible", "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + os.path.join(VENV_BIN, "python"),
              "-m", "katafleet.kata." + module, "-a", json.dumps(args), "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("localhost | SUCCESS") or out.stdout.startswith("localhost | CHANGED"), out.stdout
    assert "No module named" not in out.stdout and "| FAILED" not in out.stdout, out.stdout


@pytest.fixture(scope="module")
def one_node_lab():
    lab = Lab("coll")
    lab.up((("node1", "v1"),))
    yield lab
    lab.down()


def test_rollout_of_lab_nodes_from_the_installed_collection(installed, one_node_lab, tmp_path):
    own = installed["work"] / "my-rollout.yml"
    own.write_text("""---
- name: My Kata nodes
  hosts: kata_nodes
  gather_facts: false
  roles:
    - role: katafleet.kata.kata_config
      vars:
        kata_config_default_memory: 1024
    - role: katafleet.kata.kata_containerd
""")
    for playbook in ("katafleet.kata.site", str(own)):
        out = run(installed, "ansible-playbook", "-i", one_node_lab.inventory, playbook)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
        assert "failed=0" in out.stdout and "unreachable=0" in out.stdout
    conf = one_node_lab.ssh("node1", "grep -E '^default_memory' /etc/kata-containers/configuration.toml").stdout
    assert conf.split() == ["default_memory", "=", "1024"]
    assert "kata-qemu" in one_node_lab.ssh("node1", "cat /etc/containerd/config.toml").stdout
    # the module code that ran came from the installed copy, not from the checkout
    out = run(installed, "ansible-doc", "katafleet.kata.kata_config", "--json")
    assert str(installed["colls"]) in json.loads(out.stdout)["katafleet.kata.kata_config"]["doc"]["filename"]
