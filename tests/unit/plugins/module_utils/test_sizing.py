"""sizing.py: the field notes' worked examples (expected values are the seeds' literal numbers), then one case per
rule and per warning code."""

import json
import os
import subprocess

import pytest

from helpers import ROOT, VENV_BIN

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import sizing
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

MI = 1048576


def values(host_cpus=48, host_memory_mib=196608, **sets):
    return sizing.kata_values(None, sorted(sets.items()), host_cpus, host_memory_mib)


def pod(containers, init=None, annotations=None, **spec):
    spec = dict(spec, containers=containers)
    if init:
        spec["initContainers"] = init
    return {"name": "Pod/p", "kind": "Pod", "source": "w.yaml", "annotations": annotations or {}, "spec": spec}


def ctr(name="c", requests=None, limits=None, **extra):
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return dict(extra, name=name, resources=res)


def codes(report):
    return [w["code"] for w in report["warnings"]]


NO_OVERHEAD = {"cpu": 0, "memory": 0}
SEED001_OVERHEAD = {"cpu": 1000, "memory": 2000 * MI}  # seed 001: podFixed memory 2000Mi, cpu 1000m


# seed 001_2857e264df0a5e5d.txt, "Pod QoS": kubectl describe node with overhead 1 CPU / 2000Mi
@pytest.mark.parametrize("resources, qos, requests, limits", [
    ({"requests": {"memory": "1000Mi", "cpu": "1000m"}, "limits": {"memory": "1000Mi", "cpu": "1000m"}},
     "Guaranteed", {"cpu_m": 2000, "memory_mib": 3000}, {"cpu_m": 2000, "memory_mib": 3000}),
    ({"limits": {"cpu": "1000m"}, "requests": {"cpu": "1000m"}},
     "Burstable", {"cpu_m": 2000, "memory_mib": 2000}, {"cpu_m": 2000, "memory_mib": None}),
    ({}, "BestEffort", {"cpu_m": 1000, "memory_mib": 2000}, {"cpu_m": None, "memory_mib": None}),
])
def test_seed001_qos_table(resources, qos, requests, limits):
    r = sizing.explain_pod(pod([dict(name="uname", resources=resources)]), values(), SEED001_OVERHEAD)
    assert (r["qos"], r["requests"], r["limits"]) == (qos, requests, limits)


def test_seed001_guaranteed_vm_2_vcpus_3072_mib():
    # seed 001: limit 1C/1G + Kata config 1C/2G -> "2C, 3G" VM; guest free -m total 3009 (3072 MiB block-rounded)
    c = ctr("uname", {"memory": "1000Mi", "cpu": "1000m"}, {"memory": "1000Mi", "cpu": "1000m"})
    r = sizing.explain_pod(pod([c]), values(), SEED001_OVERHEAD)
    assert r["vm"]["vcpus"] == 2 and r["vm"]["memory_mib"] == 3072
    assert r["vm"]["boot_vcpus"] == 1 and r["vm"]["boot_memory_mib"] == 2048
    # static_sandbox_resource_mgmt: sized once at boot, unrounded: 2048 + 1000 = 3048 (DOMAIN.md section 3)
    r = sizing.explain_pod(pod([c]), values(**{"runtime.static_sandbox_resource_mgmt": True}), SEED001_OVERHEAD)
    assert r["vm"]["vcpus"] == 2 and r["vm"]["memory_mib"] == 3048
    assert r["vm"]["boot_vcpus"] == 2 and r["vm"]["boot_memory_mib"] == 3048


def test_seed001_default_vcpus_5_two_cpu_pod():
    # seed 001 "Example": default_vcpus = 5, overhead 1000m/1000Mi, pod 2 CPU/1000Mi -> 7 vCPUs in the guest,
    # kubectl describe node: 3 / 3 CPU, 2000Mi / 2000Mi
    c = ctr("uname", {"memory": "1000Mi", "cpu": "2"}, {"memory": "1000Mi", "cpu": "2"})
    r = sizing.explain_pod(pod([c]), values(default_vcpus=5, default_memory=2048), {"cpu": 1000, "memory": 1000 * MI})
    assert r["vm"]["vcpus"] == 7
    assert r["pod_cgroup"] == {"cpu_m": 3000, "memory_mib": 2000}
    assert r["requests"] == {"cpu_m": 3000, "memory_mib": 2000}


@pytest.mark.parametrize("cgroup_only", [True, False])
def test_seed004_pod_cgroup_1250m_1184mi(cgroup_only):
    # seed 004_91af125809eb13ef.txt: podFixed 250m/160Mi, limit 1C1Gi -> 1250m 1250m 1184Mi 1184Mi in both modes
    c = ctr("iperf", limits={"memory": "1Gi", "cpu": "1"})
    r = sizing.explain_pod(pod([c]), values(**{"runtime.sandbox_cgroup_only": cgroup_only}),
                           {"cpu": 250, "memory": 160 * MI})
    assert r["pod_cgroup"] == {"cpu_m": 1250, "memory_mib": 1184}
    assert r["requests"] == {"cpu_m": 1250, "memory_mib": 1184}
    assert r["qos"] == "Guaranteed"


def test_init_containers_and_sidecars():
    # K8s PodRequests: max(init phases, apps + sidecars); a sidecar counts from its start on
    init = [ctr("side", {"cpu": "200m", "memory": "100Mi"}, restartPolicy="Always"),
            ctr("migrate", {"cpu": "2", "memory": "500Mi"})]
    apps = [ctr("a", {"cpu": "500m", "memory": "200Mi"}), ctr("b", {"cpu": "300m", "memory": "300Mi"})]
    r = sizing.explain_pod(pod(apps, init), values(), NO_OVERHEAD)
    assert r["requests"] == {"cpu_m": 2200, "memory_mib": 600}
    assert r["limits"] == {"cpu_m": None, "memory_mib": None}
    assert r["qos"] == "Burstable"


def test_limits_declared_by_every_container_including_init():
    init = [ctr("i", limits={"cpu": "1", "memory": "256Mi"})]
    apps = [ctr("a", limits={"cpu": "1", "memory": "512Mi"}), ctr("b", limits={"memory": "256Mi"})]
    r = sizing.explain_pod(pod(apps, init), values(), {"cpu": 250, "memory": 160 * MI})
    assert r["limits"] == {"cpu_m": None, "memory_mib": 928}  # 512 + 256 + 160; cpu missing on b
    assert r["qos"] == "Burstable"
    # the VM still gets the limits that exist: 1 + 1 CPU, 768 MiB -> 2048 + 768 (a multiple of 128)
    assert (r["vm"]["vcpus"], r["vm"]["memory_mib"]) == (2, 2816)


def test_memory_hotplug_rounds_up_to_128_mib():
    r = sizing.explain_pod(pod([ctr(limits={"memory": "129e6"})]), values(), NO_OVERHEAD)
    assert r["vm"]["memory_mib"] == 2048 + 128  # 129e6 bytes = 123 MiB -> one 128 MiB block
    assert r["limits"]["memory_mib"] == 123.02


def test_caps_at_default_maxvcpus_and_maxmemory():
    c = ctr(limits={"cpu": "6", "memory": "4Gi"})
    r = sizing.explain_pod(pod([c]), values(default_maxvcpus=4, default_maxmemory=4096), NO_OVERHEAD)
    assert (r["vm"]["vcpus"], r["vm"]["memory_mib"]) == (4, 4096)
    assert r["vm"]["vcpus_capped"] and r["vm"]["memory_capped"]
    assert codes(r) == ["HOTPLUG_CAPPED", "HOTPLUG_CAPPED"]


def test_host_clamps_default_vcpus_and_maxvcpus():
    # KC config.go: default_vcpus > host CPUs -> host CPUs; default_maxvcpus 0 -> host CPUs
    r = sizing.explain_pod(pod([ctr(limits={"cpu": "8"})]), values(host_cpus=4, default_vcpus=8), NO_OVERHEAD)
    assert r["vm"]["boot_vcpus"] == 4 and r["vm"]["vcpus"] == 4 and "HOTPLUG_CAPPED" in codes(r)


def test_static_vm_larger_than_host():
    r = sizing.explain_pod(pod([ctr(limits={"cpu": "8", "memory": "8Gi"})]),
                           values(host_cpus=4, host_memory_mib=8192, **{"runtime.static_sandbox_resource_mgmt": True}),
                           NO_OVERHEAD)
    assert (r["vm"]["vcpus"], r["vm"]["memory_mib"]) == (9, 10240)
    assert codes(r) == ["VM_EXCEEDS_HOST", "VM_EXCEEDS_HOST"]


def test_no_limits_warning_and_default_vm():
    r = sizing.explain_pod(pod([ctr()]), values(), NO_OVERHEAD)
    assert (r["vm"]["vcpus"], r["vm"]["memory_mib"]) == (1, 2048) and codes(r) == ["NO_LIMITS"]


def test_annotations_enabled_and_passed_change_the_vm():
    ann = {"io.katacontainers.config.hypervisor.default_vcpus": "4",
           "io.katacontainers.config.hypervisor.default_memory": "4096"}
    v = values(enable_annotations=["default_vcpus", "default_memory"])
    r = sizing.explain_pod(pod([ctr(limits={"memory": "1Gi"})], annotations=ann), v, NO_OVERHEAD)
    assert (r["vm"]["boot_vcpus"], r["vm"]["boot_memory_mib"], r["vm"]["memory_mib"]) == (4, 4096, 5120)
    assert codes(r) == []
    r = sizing.explain_pod(pod([ctr(limits={"cpu": "1"})], annotations=ann), v, NO_OVERHEAD)
    assert codes(r) == ["CPU_LIMITS_AND_VCPUS_ANNOTATION"]


def test_annotation_warnings():
    ann = {"io.katacontainers.config.hypervisor.default_vcpus": "2"}
    r = sizing.explain_pod(pod([ctr(limits={"memory": "1Gi"})], annotations=ann), values(), NO_OVERHEAD)
    assert codes(r) == ["ANNOTATION_NOT_ENABLED"] and r["vm"]["boot_vcpus"] == 1
    v = values(enable_annotations=[".*"], **{"containerd.pod_annotations": ["io.kubernetes.*"]})
    assert codes(sizing.explain_pod(pod([ctr(limits={"memory": "1Gi"})], annotations=ann), v,
                                    NO_OVERHEAD)) == ["ANNOTATION_NOT_PASSED"]
    bad = {"io.katacontainers.config.hypervisor.default_memory": "128"}
    assert codes(sizing.explain_pod(pod([ctr(limits={"memory": "1Gi"})], annotations=bad), values(enable_annotations=[".*"]),
                                    NO_OVERHEAD)) == ["ANNOTATION_INVALID"]


def test_memory_below_minimum():
    r = sizing.explain_pod(pod([ctr(limits={"memory": "128Mi"})]), values(), NO_OVERHEAD)
    assert codes(r) == ["MEMORY_BELOW_MINIMUM"]


def test_overhead_warnings_with_sandbox_cgroup_only():
    v = values(**{"runtime.sandbox_cgroup_only": True})
    r = sizing.explain_pod(pod([ctr(limits={"memory": "4Gi"})]), v, {"cpu": 100, "memory": 64 * MI})
    assert codes(r) == ["OVERHEAD_BELOW_FOOTPRINT", "GUEST_MEMORY_BEYOND_CGROUP"]
    # seed 004's pod: 3072 MiB guest + ~110 MiB beyond the 1184 MiB cgroup (fine idle, killed under guest pressure)
    r = sizing.explain_pod(pod([ctr(limits={"memory": "1Gi", "cpu": "1"})]), v, {"cpu": 250, "memory": 160 * MI})
    assert codes(r) == ["GUEST_MEMORY_BEYOND_CGROUP"]
    assert codes(sizing.explain_pod(pod([ctr(limits={"memory": "1Gi", "cpu": "1"})]), values(),
                                    {"cpu": 250, "memory": 160 * MI})) == []


def test_compatibility_warnings():
    c = ctr(limits={"memory": "1Gi"}, securityContext={"privileged": True},
            volumeMounts=[{"name": "scratch", "mountPath": "/s", "subPath": "x"},
                          {"name": "docker", "mountPath": "/var/run/docker.sock"}])
    vols = [{"name": "scratch", "emptyDir": {}}, {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]
    v = values(**{"containerd.privileged_without_host_devices": False})
    r = sizing.explain_pod(pod([c], hostNetwork=True, volumes=vols), v, NO_OVERHEAD)
    assert codes(r) == ["HOST_NETWORK", "SUBPATH_EMPTYDIR", "RUNTIME_SOCKET_MOUNT", "PRIVILEGED_HOST_DEVICES"]
    assert "PRIVILEGED_HOST_DEVICES" not in codes(sizing.explain_pod(pod([c], volumes=vols), values(), NO_OVERHEAD))


def test_every_warning_code_documented_in_readme():
    readme = open(os.path.join(ROOT, "README.md")).read()
    for code in sizing.WARNING_CODES:
        assert "`%s`" % code in readme


def test_pod_templates_of_every_kind(tmp_path):
    tmpl = {"metadata": {"annotations": {"a": "b"}}, "spec": {"containers": [ctr(limits={"cpu": "1"})]}}
    docs = [
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": tmpl}},
        {"kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"template": tmpl}},
        {"kind": "DaemonSet", "metadata": {"name": "ds"}, "spec": {"template": tmpl}},
        {"kind": "ReplicaSet", "metadata": {"name": "rs"}, "spec": {"template": tmpl}},
        {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": tmpl}},
        {"kind": "CronJob", "metadata": {"name": "cj"}, "spec": {"jobTemplate": {"spec": {"template": tmpl}}}},
        {"kind": "Service", "metadata": {"name": "svc"}},
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": tmpl["spec"]},
    ]
    path = tmp_path / "w.yaml"
    path.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))
    pods = sizing.load_pods([str(path)])
    assert [p["name"] for p in pods] == ["Deployment/d", "StatefulSet/s", "DaemonSet/ds", "ReplicaSet/rs", "Job/j",
                                         "CronJob/cj", "Pod/p"]


def test_error_names_file_object_container_field(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      initContainers:\n"
                    "      - name: init\n        resources: {limits: {memory: 1 GB}}\n      containers: [{name: app}]\n")
    with pytest.raises(KatafleetError) as exc:
        sizing.explain(sizing.load_pods([str(path)]), values(), NO_OVERHEAD)
    assert str(exc.value).startswith("%s, key Deployment/web, container init (initContainers), field "
                                     "resources.limits.memory, value '1 GB': not a Kubernetes quantity" % path)
    with pytest.raises(KatafleetError, match="request 2 is above the limit 1"):
        sizing.explain_pod(pod([ctr(requests={"cpu": "2"}, limits={"cpu": "1"})]), values(), NO_OVERHEAD)


def test_set_refuses_unknown_keys():
    with pytest.raises(KatafleetError, match="did you mean 'default_vcpus'"):
        values(default_vcpu=2)


def test_kata_config_file_and_handler_default(tmp_path):
    cfg = tmp_path / "configuration.toml"
    cfg.write_text("[hypervisor.qemu]\ndefault_vcpus = 2\ndefault_memory = 4096\n[runtime]\n"
                   "static_sandbox_resource_mgmt = true\n")
    v = sizing.kata_values(str(cfg), [], 16, 65536)
    handler, overhead = sizing.overhead_from(None, "kata-qemu")
    assert overhead == {"cpu": 250, "memory": 320 * MI}  # kata-deploy's kata-qemu 320Mi/250m (DOMAIN.md section 4)
    r = sizing.explain_pod(pod([ctr(limits={"cpu": "1", "memory": "1000Mi"})]), v, overhead)
    assert (r["vm"]["vcpus"], r["vm"]["memory_mib"]) == (3, 5096)


def run_cli(*args):
    return subprocess.run([os.path.join(VENV_BIN, "katafleet"), "explain"] + list(args), capture_output=True,
                          text=True, check=False)


def test_cli_json_and_exit_codes(tmp_path):
    w = tmp_path / "w.yaml"
    w.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: guaranteed}\nspec:\n  containers:\n  - name: uname\n"
                 "    resources:\n      requests: {memory: 1000Mi, cpu: 1000m}\n      limits: {memory: 1000Mi, cpu: 1000m}\n")
    rc = tmp_path / "rc.yaml"
    rc.write_text("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: kata-runtime}\nhandler: kata\n"
                  "overhead:\n  podFixed: {memory: 2000Mi, cpu: 1000m}\n")
    proc = run_cli("--json", "--runtimeclass", str(rc), "--host-cpus", "48", "--host-memory", "192Gi", str(w))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    p = out["pods"][0]
    assert (p["name"], p["qos"]) == ("Pod/guaranteed", "Guaranteed")
    assert p["vm"]["vcpus"] == 2 and p["vm"]["memory_mib"] == 3072
    assert p["vm"]["boot_vcpus"] == 1 and p["vm"]["boot_memory_mib"] == 2048
    assert p["requests"] == {"cpu_m": 2000, "memory_mib": 3000} and p["limits"] == {"cpu_m": 2000, "memory_mib": 3000}
    assert p["pod_cgroup"] == {"cpu_m": 2000, "memory_mib": 3000} and p["warnings"] == []
    table = run_cli("--set", "runtime.static_sandbox_resource_mgmt=true", "--host-cpus", "4", "--host-memory", "8Gi",
                    str(w))
    assert table.returncode == 0 and "2 vCPU / 3048Mi (static)" in table.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: c, resources: {limits: {cpu: two}}}]\n")
    proc = run_cli("--json", str(bad))
    assert proc.returncode == 2 and "Pod/x, container c (containers), field resources.limits.cpu" in proc.stderr
    assert run_cli(str(tmp_path / "missing.yaml")).returncode == 2
