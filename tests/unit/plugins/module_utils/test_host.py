"""Host prerequisites on temporary node trees: devices, kernel modules (loaded, skipped with a reason, failed),
the modules-load.d file, the Kata tools' own check (KC src/runtime/cmd/kata-runtime/kata-check.go,
src/tools/kata-ctl/src/args.rs) and the one failure message. Nothing outside tmp_path is read for node state."""

import os
import stat

import pytest

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import host

RELEASE = "6.1.0-katafleet-test"
CONF = "/etc/modules-load.d/katafleet.conf"


def node(tmp_path, release=RELEASE):
    root = tmp_path / "node"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    return root


def chardev(root, path, major=10, minor=232):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    try:
        os.mknod(full, 0o600 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")


def script(root, path, body):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write("#!/bin/sh\n" + body)
    os.chmod(full, 0o755)
    return full


def fake_modprobe(root, fail=()):
    """A modprobe that logs its argument and 'loads' the module by creating /sys/module/<name>."""
    (root / "lib/modules" / RELEASE).mkdir(parents=True)
    cases = "".join('  %s) echo "modprobe: FATAL: Module %s not found in directory /lib/modules/%s" >&2; exit 1;;\n'
                    % (n, n, RELEASE) for n in fail)
    return script(root, "/sbin/modprobe", 'echo "$1" >> "%s/modprobe.log"\ncase "$1" in\n%s'
                  'esac\nmkdir -p "%s/sys/module/$1"\n' % (root, cases, root))


def conf(root):
    return root / CONF.lstrip("/")


def test_bare_node_lists_every_problem_skips_the_load_with_its_reason_and_persists_the_modules(tmp_path):
    root = node(tmp_path)
    res = host.inspect(root=str(root), kata_check="auto")
    assert [m["state"] for m in res["kernel_modules"]] == ["skipped", "skipped"]
    reason = res["kernel_modules"][0]["reason"]
    assert "no modprobe on this node" in reason and "no /lib/modules/%s" % RELEASE in reason
    assert [d["present"] for d in res["devices"]] == [False, False]
    assert res["problems"][0].startswith("/dev/kvm is missing")
    assert res["problems"][1].startswith("/dev/vhost-vsock is missing") and "vhost_vsock skipped" in res["problems"][1]
    message = host.failure_message(res)
    assert message.startswith("this node cannot run Kata Containers (hypervisor qemu): 2 problems: (1) /dev/kvm")
    assert "(2) /dev/vhost-vsock is missing" in message
    assert res["changed"] and conf(root).read_text().splitlines()[-2:] == ["vhost_vsock", "vhost_net"]
    assert stat.S_IMODE(os.stat(conf(root)).st_mode) == 0o644
    assert os.listdir(conf(root).parent) == ["katafleet.conf"]  # no temporary file left beside it
    again = host.inspect(root=str(root))
    assert not again["changed"] and not again["modules_load_file"]["changed"]
    assert res["kata_check"]["skipped"] and "kata-runtime or kata-ctl not found" in res["kata_check"]["reason"]


def test_check_mode_writes_nothing_and_says_what_it_would_load(tmp_path):
    root = node(tmp_path)
    fake_modprobe(root)
    res = host.inspect(root=str(root), check_mode=True)
    assert res["changed"] and res["modules_load_file"]["changed"]
    assert res["modules_load_file"]["before"] is None and "vhost_net\n" in res["modules_load_file"]["after"]
    assert [m["state"] for m in res["kernel_modules"]] == ["would_load", "would_load"]
    assert not conf(root).exists() and not (root / "modprobe.log").exists()


def test_modprobe_loads_what_is_missing_once(tmp_path):
    root = node(tmp_path)
    fake_modprobe(root)
    (root / "sys/module/vhost_net").mkdir(parents=True)  # already loaded: not loaded again
    chardev(root, "/dev/kvm")
    chardev(root, "/dev/vhost-vsock", minor=241)
    res = host.inspect(root=str(root))
    assert [(m["name"], m["state"]) for m in res["kernel_modules"]] == [("vhost_vsock", "loaded"),
                                                                        ("vhost_net", "already_loaded")]
    assert (root / "modprobe.log").read_text() == "vhost_vsock\n"
    assert res["problems"] == [] and [d["present"] for d in res["devices"]] == [True, True]
    assert res["devices"][1]["reason"] == "character device 10:241"
    again = host.inspect(root=str(root))
    assert not again["changed"] and (root / "modprobe.log").read_text() == "vhost_vsock\n"


def test_a_failed_load_and_a_file_in_place_of_a_device_are_problems(tmp_path):
    root = node(tmp_path)
    fake_modprobe(root, fail=("vhost_vsock",))
    (root / "dev").mkdir()
    (root / "dev/kvm").write_text("")
    res = host.inspect(root=str(root))
    states = {m["name"]: m for m in res["kernel_modules"]}
    assert states["vhost_vsock"]["state"] == "failed" and "not found in directory" in states["vhost_vsock"]["reason"]
    assert states["vhost_net"]["state"] == "loaded"
    assert res["problems"][0].startswith("kernel module vhost_vsock: load failed:")
    assert "/dev/kvm is not a character device" in res["problems"]
    assert any("vhost_vsock failed" in p for p in res["problems"] if p.startswith("/dev/vhost-vsock"))


def test_builtin_modules_count_as_loaded(tmp_path):
    root = node(tmp_path)
    moddir = root / "lib/modules" / RELEASE
    moddir.mkdir(parents=True)
    (moddir / "modules.builtin").write_text("kernel/drivers/vhost/vhost_vsock.ko\nkernel/drivers/vhost/vhost_net.ko\n")
    res = host.inspect(root=str(root))
    assert [m["state"] for m in res["kernel_modules"]] == ["builtin", "builtin"]
    # no modprobe, but nothing needed loading: the vsock device is still what decides
    assert res["devices"][1]["reason"] == "/dev/vhost-vsock is missing: load the vhost_vsock kernel module"


@pytest.mark.parametrize("hypervisor,paths", [
    ("qemu", ["/dev/kvm", "/dev/vhost-vsock"]),
    ("stratovirt", ["/dev/kvm", "/dev/vhost-vsock"]),
    # hybrid vsock over a unix socket (KC virtcontainers/clh.go, fc.go GenerateSocket)
    ("clh", ["/dev/kvm"]), ("firecracker", ["/dev/kvm"]), ("dragonball", ["/dev/kvm"]),
    ("remote", []),
])
def test_devices_per_hypervisor(tmp_path, hypervisor, paths):
    root = node(tmp_path)
    res = host.inspect(root=str(root), hypervisor=hypervisor)
    assert [d["path"] for d in res["devices"]] == paths
    assert len(res["problems"]) == len(paths)


def test_remote_wants_no_modules_and_removes_the_file_device_overrides(tmp_path):
    root = node(tmp_path)
    host.inspect(root=str(root))
    assert conf(root).exists()
    res = host.inspect(root=str(root), hypervisor="remote")
    assert res["kernel_modules"] == [] and res["changed"] and not conf(root).exists()
    assert res["modules_load_file"]["after"] is None
    res = host.inspect(root=str(root), hypervisor_device="none", vsock_device="/dev/vsock-other",
                       kernel_modules=["vhost_net"])
    assert [d["path"] for d in res["devices"]] == ["/dev/vsock-other"]
    assert conf(root).read_text().endswith("\nvhost_net\n") and "vhost_vsock" not in conf(root).read_text()


def test_existing_file_mode_is_kept(tmp_path):
    root = node(tmp_path)
    conf(root).parent.mkdir(parents=True)
    conf(root).write_text("vhost_net\n")
    os.chmod(conf(root), 0o600)
    res = host.inspect(root=str(root))
    assert res["modules_load_file"]["before"] == "vhost_net\n" and res["changed"]
    assert stat.S_IMODE(os.stat(conf(root)).st_mode) == 0o600 and "vhost_vsock\n" in conf(root).read_text()


KATA_RUNTIME_OK = ('echo "$@" > "%s/kata.args"\n'
                   'echo "INFO[0000] kernel property found  name=vhost_vsock" >&2\n'
                   'echo "System is capable of running Kata Containers"\n'
                   'echo "System can currently create Kata Containers"\n')
KATA_RUNTIME_BAD = ('echo "ERRO[0000] kernel property vhost_vsock not found" >&2\n'
                    'echo "ERRO[0000] ERROR: System is not capable of running Kata Containers" >&2\nexit 1\n')


def test_kata_runtime_check_runs_offline_and_verbose_and_its_verdict_is_reported(tmp_path):
    root = node(tmp_path)
    script(root, "/opt/kata/bin/kata-runtime", KATA_RUNTIME_OK % root)
    script(root, "/opt/kata/bin/kata-ctl", "exit 99\n")  # kata-runtime is preferred
    res = host.inspect(root=str(root), hypervisor="remote")
    kc = res["kata_check"]
    assert (root / "kata.args").read_text().split() == ["check", "--no-network-checks", "--verbose"]
    assert kc["tool"] == "kata-runtime" and kc["passed"] and kc["verdict"] == "System can currently create Kata Containers"
    assert "kernel property found" in kc["output"] and res["problems"] == []
    res = host.inspect(root=str(root), hypervisor="remote", kata_check_network=True)
    assert (root / "kata.args").read_text().split() == ["check", "--verbose"]


def test_a_failing_kata_check_is_a_problem(tmp_path):
    root = node(tmp_path)
    script(root, "/opt/kata/bin/kata-runtime", KATA_RUNTIME_BAD)
    res = host.inspect(root=str(root), hypervisor="remote")
    assert res["kata_check"]["rc"] == 1 and not res["kata_check"]["passed"]
    assert res["problems"] == ["kata-runtime check: System is not capable of running Kata Containers"]


def test_kata_ctl_subcommands_and_check_mode(tmp_path):
    root = node(tmp_path)
    script(root, "/opt/kata/bin/kata-ctl", 'echo "$@" > "%s/kata.args"\necho "boom: no kvm" >&2\nexit 1\n' % root)
    res = host.inspect(root=str(root), hypervisor="remote", check_mode=True)
    assert res["kata_check"]["skipped"] and "check mode" in res["kata_check"]["reason"]
    assert not (root / "kata.args").exists()
    res = host.inspect(root=str(root), hypervisor="remote")
    assert (root / "kata.args").read_text().split() == ["check", "no-network-checks"]
    assert res["problems"] == ["kata-ctl check: failed (exit 1): boom: no kvm"]
    host.inspect(root=str(root), hypervisor="remote", kata_check_network=True)
    assert (root / "kata.args").read_text().split() == ["check", "all"]
    res = host.inspect(root=str(root), hypervisor="remote", kata_check="none")
    assert res["kata_check"]["skipped"] and res["problems"] == []


def test_libraries_report_the_import_error(tmp_path):
    res = host.inspect(root=str(node(tmp_path)), libraries=["tomlkit", "katafleet_no_such_library"],
                       host_checks=False)
    assert res["libraries"]["tomlkit"]["present"] and res["libraries"]["tomlkit"]["version"]
    assert res["missing_libraries"] == ["katafleet_no_such_library"]
    assert "ModuleNotFoundError" in res["libraries"]["katafleet_no_such_library"]["error"]
    assert "devices" not in res and res["problems"] == []  # host checks off: nothing checked or written
    assert not (tmp_path / "node/etc").exists()


def test_unknown_hypervisor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown hypervisor 'kvm'"):
        host.inspect(root=str(node(tmp_path)), hypervisor="kvm")
