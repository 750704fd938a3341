"""kata_containerd through ansible-playbook, and a real containerd daemon loading the result."""

import os
import shutil
import signal
import subprocess
import time
import tomllib

import pytest

from helpers import fixture_path, sha

CTD = shutil.which("containerd")
pytestmark = pytest.mark.skipif(CTD is None, reason="containerd is installed by scripts/setup.sh")
DEFAULT_16 = fixture_path("containerd", "config-default-1.6-debian.toml")
SHIPPED_16 = fixture_path("containerd", "config-debian-shipped-etc-1.6.toml")

TASK = """
- name: kata handlers
  katafleet.kata.kata_containerd:
    path: {path}
    state: {state}
    backup: true
    backup_dir: {backups}
    handlers:
      - name: kata-qemu
        config_path: /opt/kata/share/defaults/kata-containers/configuration-qemu.toml
      - name: kata-clh
"""


def test_module_check_diff_apply_idempotent_absent(playbook, tmp_path):
    path = str(tmp_path / "config.toml")
    shutil.copyfile(DEFAULT_16, path)
    digest = sha(path)
    args = dict(path=path, backups=tmp_path / "bk")
    rc, res, dummy = playbook(TASK.format(state="present", **args), check=True, diff=True)
    assert rc == 0 and res[0]["changed"] and sha(path) == digest
    assert "kata-qemu]" in res[0]["diff"][0]["after"]
    assert res[0]["validated_by"].startswith("1.6") and res[0]["config_version"] == 2
    assert any("configuration-qemu.toml does not exist" in w for w in res[0]["warnings_list"])
    rc, res, dummy = playbook(TASK.format(state="present", **args))
    assert rc == 0 and res[0]["changed"] and list(res[0]["backups"]) == [path]
    assert open(res[0]["backups"][path]).read() == open(DEFAULT_16).read()
    rc, res, dummy = playbook(TASK.format(state="present", **args))
    assert rc == 0 and not res[0]["changed"]
    rc, res, dummy = playbook(TASK.format(state="absent", **args))
    assert rc == 0 and res[0]["changed"] and sha(path) == digest


def test_module_refuses_bad_name_without_traceback(playbook, tmp_path):
    path = str(tmp_path / "config.toml")
    shutil.copyfile(DEFAULT_16, path)
    digest = sha(path)
    rc, res, dummy = playbook("""
    - name: bad
      katafleet.kata.kata_containerd:
        path: {path}
        handlers: [{{name: kata_qemu}}]
    """.format(path=path))
    assert rc != 0 and "DNS label" in res[0]["msg"] and "'kata_qemu'" in res[0]["msg"] and "kata-qemu" in res[0]["msg"]
    assert "Traceback" not in res[0]["msg"] and sha(path) == digest


def start_containerd(tmp_path, config):
    sock = str(tmp_path / "c.sock")
    log = open(tmp_path / "containerd.log", "w")
    proc = subprocess.Popen([CTD, "--config", config, "--root", str(tmp_path / "root"), "--state",
                             str(tmp_path / "state"), "--address", sock, "--log-level", "info"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for dummy in range(100):
        if os.path.exists(sock) and subprocess.run(["ctr", "--address", sock, "version"], capture_output=True, check=False).returncode == 0:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    return proc, sock


def test_real_daemon_loads_cri_with_kata_runtime(playbook, tmp_path):
    """Debian's minimal shipped config + our handlers: the daemon must start CRI with kata and runc."""
    path = str(tmp_path / "config.toml")
    shutil.copyfile(SHIPPED_16, path)
    rc, res, dummy = playbook(TASK.format(state="present", path=path, backups=tmp_path / "bk"))
    assert rc == 0 and res[0]["changed"]
    proc, sock = start_containerd(tmp_path, path)
    try:
        assert proc.poll() is None, open(tmp_path / "containerd.log").read()
        plugins = subprocess.run(["ctr", "--address", sock, "plugins", "ls"], capture_output=True, text=True, check=False).stdout
        cri = [l for l in plugins.splitlines() if l.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
        assert cri and cri[0].split()[-1] == "ok", plugins
        log = open(tmp_path / "containerd.log").read()
        start = [l for l in log.splitlines() if "Start cri plugin with config" in l]
        assert start and "kata-qemu:{Type:io.containerd.kata.v2" in start[0]
        assert "ConfigPath:/opt/kata/share/defaults/kata-containers/configuration-qemu.toml" in start[0]
        assert "runc:{Type:io.containerd.runc.v2" in start[0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_real_daemon_refuses_what_the_module_refuses(tmp_path):
    """The rule behind the module's default-runtime check, shown on the real daemon: a config whose runtimes
    lack the default makes CRI fail to load."""
    path = str(tmp_path / "config.toml")
    shutil.copyfile(fixture_path("containerd", "validation-1.6", "good.toml"), path)
    proc, sock = start_containerd(tmp_path, path)
    try:
        plugins = subprocess.run(["ctr", "--address", sock, "plugins", "ls"], capture_output=True, text=True, check=False).stdout
        cri = [l for l in plugins.splitlines() if l.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
        assert cri and cri[0].split()[-1] == "error"
        assert "no corresponding runtime configured" in open(tmp_path / "containerd.log").read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    data = tomllib.loads(open(path).read())
    assert "runc" not in data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
