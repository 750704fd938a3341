"""Host prerequisites on the lab, over SSH: role kata_prereqs on every node.

The lab's nodes share this machine's kernel, which has /dev/kvm but no vhost_vsock (no /dev/vhost-vsock),
no modprobe and no /lib/modules: so a node fails with the one message naming /dev/vhost-vsock and the skipped
load with its reason, while the modules-load.d file lands in the node's own /etc (its overlay), not the host's.
Run alone: KATAFLEET_LAB_NAME=prereq .venv/bin/pytest -q tests/lab/test_prereqs.py"""

import os

import pytest

from helpers import run_pb

CONF = "/etc/modules-load.d/katafleet.conf"
CHECK = "Check the node's Kata prerequisites and the libraries katafleet's modules import"
RELEASE = os.uname().release  # lab nodes share this kernel

PLAY = """\
- name: Kata prerequisites
  hosts: kata_nodes
  gather_facts: false
  roles:
    - role: katafleet.kata.kata_prereqs
"""


@pytest.fixture(scope="module")
def play(tmp_path_factory):
    path = tmp_path_factory.mktemp("prereqs") / "prereqs.yml"
    path.write_text(PLAY)
    return str(path)


def by_task(results, name):
    return {r["_host"]: r for r in results if r["_task"].split(" : ", 1)[-1] == name}


def test_node_without_vhost_vsock_fails_with_one_message_and_persists_in_its_own_etc(lab, play, tmp_path):
    host_had_conf = os.path.exists(CONF)
    rc, res, stats = run_pb(lab, tmp_path, play, "-e", "kata_prereqs_on_missing=fail")
    assert rc != 0
    checks = by_task(res, CHECK)
    assert sorted(checks) == ["node1", "node2", "node3"]
    skip_reason = ("no modprobe on this node; no /lib/modules/%s on this node (no module files for the running kernel)"
                   % RELEASE)
    for node, r in checks.items():
        assert r["failed"] and stats[node]["failures"] == 1, r
        assert r["msg"] == (
            "this node cannot run Kata Containers (hypervisor qemu): 1 problem: (1) /dev/vhost-vsock is missing: "
            "load the vhost_vsock kernel module; vhost_vsock skipped (%s)" % skip_reason), r["msg"]
        assert [(m["name"], m["state"], m["reason"]) for m in r["kernel_modules"]] == [
            ("vhost_vsock", "skipped", skip_reason), ("vhost_net", "skipped", skip_reason)]
        kvm = [d for d in r["devices"] if d["path"] == "/dev/kvm"][0]
        assert kvm["present"], kvm  # the lab has KVM: only the vsock device is missing
        assert r["kata_check"]["skipped"] and "not found" in r["kata_check"]["reason"]  # the lab ships no kata-runtime
        # the file is in the node's own /etc: visible over SSH, stored in the node's overlay, not on the host
        text = lab.ssh(node, "cat " + CONF).stdout
        assert text.splitlines()[-2:] == ["vhost_vsock", "vhost_net"]
        upper = os.path.join(lab.dir, "nodes", node, "upper", CONF.lstrip("/"))
        assert open(upper).read() == text
    assert os.path.exists(CONF) == host_had_conf


def test_warn_mode_goes_on_and_the_next_run_costs_one_task_per_node(lab, play, tmp_path):
    """The lab's inventory warns; the no-change run runs one task per node on the node (the module), and changes
    nothing. The argument-spec check and the preflight run on the controller (no connection to the node)."""
    rc, res, stats = run_pb(lab, tmp_path, play)
    assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
    for node, r in by_task(res, CHECK).items():
        assert not r["ready"] and any("/dev/vhost-vsock is missing" in w for w in r["warnings"])
    rc, res, stats = run_pb(lab, tmp_path, play)
    assert rc == 0
    for node in ("node1", "node2", "node3"):
        ran = [r["_task"].split(" : ", 1)[-1] for r in res if r["_host"] == node and not r.get("skipped")]
        controller = [t for t in ran if t.startswith(("Validating arguments against arg spec", "Preflight | "))]
        assert len(controller) == 2 and [t for t in ran if t not in controller] == [CHECK], ran
        assert stats[node]["changed"] == 0
    assert not by_task(res, "Pack the controller's tomlkit")["node1"].get("changed")


def test_kata_runtime_on_path_is_run_offline_and_its_verdict_fails_the_node(lab, play, tmp_path):
    fake = ("#!/bin/sh\necho \"$@\" > /tmp/kata-runtime.args\n"
            "echo 'time=\"x\" level=error msg=\"kernel property vhost_vsock not found\"' >&2\n"
            "echo 'ERROR: System is not capable of running Kata Containers' >&2\nexit 1\n")
    lab.ssh("node1", "mkdir -p /usr/local/bin && cat > /usr/local/bin/kata-runtime <<'EOF'\n%sEOF\n"
                     "chmod 755 /usr/local/bin/kata-runtime" % fake)
    try:
        rc, res, dummy = run_pb(lab, tmp_path, play, "--limit", "node1", "-e", "kata_prereqs_on_missing=fail",
                                "-e", "kata_prereqs_vsock_device=none")
        r = by_task(res, CHECK)["node1"]
        assert rc != 0 and r["failed"]
        assert r["kata_check"]["path"] == "/usr/local/bin/kata-runtime"
        assert lab.ssh("node1", "cat /tmp/kata-runtime.args").stdout.split() == [
            "check", "--no-network-checks", "--verbose"]
        assert r["msg"] == ("this node cannot run Kata Containers (hypervisor qemu): 1 problem: "
                            "(1) kata-runtime check: System is not capable of running Kata Containers")
    finally:
        lab.ssh("node1", "rm -f /usr/local/bin/kata-runtime /tmp/kata-runtime.args", check=False)
