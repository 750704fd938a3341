"""kata_config run by ansible-playbook itself: check mode, diff, idempotence, errors, file args."""

import os
import shutil
import stat
import subprocess
import tomllib

from helpers import ROOT, VENV_BIN, ansible_env, fixture_path, sha

QEMU_322 = fixture_path("kata", "configuration-qemu.toml-rendered-3.22.0-prefix-opt-kata")


def test_check_mode_diff_then_apply_then_idempotent(playbook, tmp_path):
    path = str(tmp_path / "configuration.toml")
    shutil.copyfile(QEMU_322, path)
    digest = sha(path)
    task = """
    - name: kata config
      katafleet.kata.kata_config:
        path: {path}
        default_memory: 4096
        default_vcpus: 2
        sandbox_cgroup_only: true
        enable_debug: true
        enable_annotations: [default_vcpus]
        enable_annotations_mode: add
        mode: "0640"
    """.format(path=path)
    rc, res, dummy = playbook(task, check=True, diff=True)
    assert rc == 0 and res[0]["changed"] is True
    assert sha(path) == digest  # check mode wrote nothing
    diff = res[0]["diff"][0] if isinstance(res[0]["diff"], list) else res[0]["diff"]
    assert "default_memory = 4096" in diff["after"] and "default_memory = 2048" in diff["before"]
    keys = {c["key"] for c in res[0]["changes"]}
    assert keys == {"hypervisor.qemu.default_memory", "hypervisor.qemu.default_vcpus", "runtime.sandbox_cgroup_only",
                    "runtime.enable_debug", "hypervisor.qemu.enable_debug", "agent.kata.enable_debug",
                    "hypervisor.qemu.enable_annotations"}

    rc, res, dummy = playbook(task, diff=True)
    assert rc == 0 and res[0]["changed"] is True
    data = tomllib.loads(open(path).read())
    assert data["hypervisor"]["qemu"]["default_memory"] == 4096
    assert data["hypervisor"]["qemu"]["enable_annotations"][-1] == "default_vcpus"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert res[0]["effective"]["default_memory"] == 4096 and res[0]["effective"]["sandbox_cgroup_only"] is True

    rc, res, dummy = playbook(task, diff=True)
    assert rc == 0 and res[0]["changed"] is False and res[0]["changes"] == []


def test_refusal_through_ansible_names_key_value_rule(playbook, tmp_path):
    path = str(tmp_path / "configuration.toml")
    shutil.copyfile(QEMU_322, path)
    digest = sha(path)
    rc, res, dummy = playbook("""
    - name: typo
      katafleet.kata.kata_config:
        path: {path}
        settings:
          hypervisor:
            default_memroy: 4096
    """.format(path=path))
    assert rc != 0 and res[0]["failed"]
    msg = res[0]["msg"]
    assert path in msg and "default_memroy" in msg and "4096" in msg and "unknown Kata key" in msg
    assert "did you mean 'default_memory'" in msg and "Traceback" not in msg
    assert sha(path) == digest


def test_missing_tomlkit_on_node_is_a_clear_error(playbook, tmp_path):
    """A python without tomlkit on the managed node gets a hint to run kata_prereqs, not a traceback."""
    venv = tmp_path / "bare"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    path = str(tmp_path / "configuration.toml")
    shutil.copyfile(QEMU_322, path)
    rc, res, dummy = playbook("""
    - name: no tomlkit
      katafleet.kata.kata_config:
        path: {path}
        default_memory: 4096
    """.format(path=path), interpreter=str(venv / "bin" / "python"))
    assert rc != 0
    assert "tomlkit" in res[0]["msg"] and "kata_prereqs" in res[0]["msg"]


def test_ansible_doc_renders_every_module(tmp_path):
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(ROOT, "plugins", "modules")) if n.endswith(".py"))
    assert "kata_config" in modules
    for name in modules:
        proc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "katafleet.kata." + name],
                              capture_output=True, text=True, env=ansible_env(tmp_path), cwd=ROOT, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "EXAMPLES" in proc.stdout and "RETURN VALUES" in proc.stdout, name
