"""Plays end to end on the lab: check mode runs every node to the end whatever drifted, and the plays talk
through published facts and the nodes' intended-state records, never through other roles' variables."""

import os
import shutil

import yaml

from helpers import PLAYBOOKS, ROOT, per_node, run_pb

SITE = os.path.join(PLAYBOOKS, "site.yml")
DRIFT = os.path.join(PLAYBOOKS, "drift.yml")
FILES = ("/etc/kata-containers/configuration.toml", "/etc/containerd/config.toml", "/var/lib/kubelet/kubeadm-flags.env")


def hashes(lab):
    return {n: lab.ssh(n, "sha256sum %s" % " ".join(FILES)).stdout for n in lab.node_names()}


def test_check_mode_runs_every_node_to_the_end_on_drift_of_all_three_kinds(lab, tmp_path):
    rc, res, dummy = run_pb(lab, tmp_path, SITE)
    assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
    # node1: Kata config; node2: containerd's handler stanza; node3: a feature gate its version removed
    lab.ssh("node1", "sed -i 's/^sandbox_cgroup_only = true/sandbox_cgroup_only = false/' %s" % FILES[0])
    lab.ssh("node2", "sed -i 's#containerd-shim-kata-v2\"#containerd-shim-kata-v2-old\"#' %s" % FILES[1])
    lab.ssh("node3", "sed -i 's/--container-runtime=remote/--container-runtime=remote --feature-gates=PodOverhead=true/' "
                     "%s" % FILES[2])
    assert "kata-v2-old" in lab.ssh("node2", "cat %s" % FILES[1]).stdout
    before = hashes(lab)
    for args in ((DRIFT, "--diff"), (SITE, "--check", "--diff")):
        rc, res, stats = run_pb(lab, tmp_path, *args)
        assert rc == 0, (args, [(r["_host"], r["_task"], r.get("msg")) for r in res if r.get("failed")])
        assert per_node(stats, "failures") == {"node1": 0, "node2": 0, "node3": 0}
        assert per_node(stats, "unreachable") == {"node1": 0, "node2": 0, "node3": 0}
        assert all(c >= 1 for c in per_node(stats, "changed").values()), (args, stats)
        # the containerd restart handler was notified on node2 and skipped, not failed
        restarts = [r for r in res if r["_task"].endswith("Restart containerd (new config)")]
        assert [r["_host"] for r in restarts] == ["node2"] and restarts[0].get("skipped"), restarts
        assert hashes(lab) == before, args  # check mode wrote nothing
    rc, res, dummy = run_pb(lab, tmp_path, SITE)
    assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
    rc, _res, stats = run_pb(lab, tmp_path, DRIFT)
    assert rc == 0 and per_node(stats, "changed") == {"node1": 0, "node2": 0, "node3": 0}


def inventory_with_group_vars(lab, tmp_path, handlers):
    """A copy of the lab's inventory with the handlers in group_vars/kata_nodes.yml, where operators put them
    (and where a play on localhost cannot see them)."""
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    shutil.copy(lab.inventory, inv / "hosts.ini")
    shutil.copy(os.path.join(lab.dir, "group_vars", "all.yml"), inv / "group_vars" / "all.yml")
    (inv / "group_vars" / "kata_nodes.yml").write_text(yaml.safe_dump({"kata_containerd_handlers": handlers}))
    return str(inv / "hosts.ini")


def rendered(out):
    return [(o["handler"], o["overhead"]["podFixed"]["memory"]) for o in yaml.safe_load_all(open(out / "runtimeclasses.yaml"))]


def test_runtimeclass_play_uses_the_nodes_handlers_from_facts_then_from_records(lab, tmp_path):
    shim = "/opt/kata/bin/containerd-shim-kata-v2"
    handlers = [{"name": "kata-qemu", "runtime_path": shim}, {"name": "kata-clh", "runtime_path": shim}]

    inv = inventory_with_group_vars(lab, tmp_path, handlers)
    rc_args = ["-e", "kata_runtimeclass_kubernetes_version=1.29", "-e", "kata_runtimeclass_apply=false",
               "-e", "kata_runtimeclass_legacy_validator_path=%s" % os.path.join(ROOT, ".venv", "kubernetes-validate-1.24")]
    try:
        rc, res, dummy = run_pb(lab, tmp_path, SITE, *rc_args, "-e", "kata_runtimeclass_output_dir=%s" % (tmp_path / "full"),
                                inventory=inv)
        assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
        assert rendered(tmp_path / "full") == [("kata-qemu", "320Mi"), ("kata-clh", "130Mi")]

        # --tags kubernetes: the node play does not run; the handlers come from the nodes' records
        rc, res, dummy = run_pb(lab, tmp_path, SITE, "--tags", "kubernetes", *rc_args,
                                "-e", "kata_runtimeclass_output_dir=%s" % (tmp_path / "tagged"), inventory=inv)
        assert rc == 0, [r.get("msg") for r in res if r.get("failed")]
        assert not [r for r in res if "Kata configuration" in r["_task"]]
        assert rendered(tmp_path / "tagged") == rendered(tmp_path / "full")
        for node in lab.node_names():
            assert lab.ssh(node, "test -s /var/lib/katafleet/intended/feature_gates.json", check=False).returncode == 0

        # neither facts nor records: a clear failure, nothing rendered
        rc, res, dummy = run_pb(lab, tmp_path, SITE, "--tags", "kubernetes", *rc_args,
                                "-e", "kata_runtimeclass_output_dir=%s" % (tmp_path / "none"),
                                "-e", "kata_runtimeclass_record_dir=/var/lib/katafleet/nowhere", inventory=inv)
        assert rc != 0
        failed = [r for r in res if r.get("failed")]
        assert "No handler list for node1, node2, node3" in failed[-1]["msg"]
        assert not (tmp_path / "none").exists()
    finally:
        rc, _res, dummy = run_pb(lab, tmp_path, SITE)  # back to the lab's defaults
        assert rc == 0
