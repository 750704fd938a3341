"""Sizing explainer: what a Kata pod really gets (VM, requests, limits, pod cgroup, QoS) and what to watch out for.

Rules, each with its source (KC = kata-containers/kata-containers, K8s = kubernetes/kubernetes):
- effective request/limit per resource = max(largest init-phase value, sum of app containers + sidecars), where a
  sidecar is an init container with ``restartPolicy: Always``: it counts from its start on, so the phase of init
  container i adds the sidecars started before it (K8s pkg/api/v1/resource/helpers.go PodRequests/PodLimits, KEP-753);
- a container with a limit and no request gets request = limit (API defaulting); requests above limits are invalid;
- ``overhead.podFixed`` is added to requests always and to a limit when every container (init ones included) has
  that limit; the pod cgroup (kubelet ResourceConfigForPod) is limited by the same sums, else unlimited; overhead does
  not change the QoS class (K8s pkg/apis/core/v1/helper/qos GetPodQOS) nor the VM (DOMAIN.md 4, seed 001);
- the VM (KC src/runtime/virtcontainers/sandbox.go updateResources): boot size is default_vcpus x default_memory; each
  container's limits are hot-plugged on top: vCPUs = ceil(default_vcpus + CPU limits), capped at default_maxvcpus;
  memory = default_memory + limits, the added part capped at default_maxmemory and rounded up to the guest's memory
  block (128 MiB on x86_64, qemu.go calcHotplugMemMiBSize). Memory is never unplugged, so the VM is reported at its
  peak (the same phase formula as Kubernetes, over the limits that exist);
- ``static_sandbox_resource_mgmt``: the VM is sized once at boot from the sandbox-sizing annotations (the kubelet's
  pod limits without overhead): ceil(default_vcpus + CPU limits), default_memory + memory limits, unrounded
  (KC src/runtime/pkg/oci/utils.go), no hot-plug;
- pod annotations ``io.katacontainers.config.hypervisor.default_vcpus`` / ``default_memory`` replace the defaults when
  the Kata config's ``enable_annotations`` (regexes on the name after the prefix) and containerd's ``pod_annotations``
  (globs) pass them; a default_memory annotation below 256 MiB or default_vcpus above the host's CPUs fails the
  sandbox (KC oci/utils.go addHypervisorMemoryOverrides / addHypervisorCPUOverrides).
"""

import fnmatch
import math
import re

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core; YAML files need it
    yaml = None

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kata_config, kata_rules, kube, runtimeclass
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

MEMORY_BLOCK_MIB = 128  # x86_64 guest memory block (GuestMemoryBlockSizeMB reported by the agent)
ANNOTATION_PREFIX = "io.katacontainers.config.hypervisor."
# enable_annotations of the shipped configuration-qemu.toml, used when no Kata config is given
SHIPPED_ENABLE_ANNOTATIONS = ["enable_iommu", "virtio_fs_extra_args", "kernel_params"]
CONTAINERD_DEFAULTS = {"pod_annotations": ["io.katacontainers.*"], "privileged_without_host_devices": True}
RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "crio.sock", "cri-dockerd.sock")
METRICS_NOTE = ("kubectl top / metrics-server see only the containers, not the VM's cost (guest kernel and agent, "
                "VMM, shim, virtiofsd): compare the VM size and the pod cgroup instead")

# where each kind keeps its pod template
TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}

WARNING_CODES = {
    "NO_LIMITS": "no container has a CPU or memory limit: the VM is only the default size",
    "VM_EXCEEDS_HOST": "the VM is larger than the host",
    "HOTPLUG_CAPPED": "hot-plug is capped by default_maxvcpus / default_maxmemory",
    "CPU_LIMITS_AND_VCPUS_ANNOTATION": "both CPU limits and a default_vcpus annotation",
    "ANNOTATION_NOT_ENABLED": "a sizing annotation the Kata config's enable_annotations does not allow",
    "ANNOTATION_NOT_PASSED": "a sizing annotation containerd's pod_annotations does not pass",
    "ANNOTATION_INVALID": "a sizing annotation the runtime refuses",
    "MEMORY_BELOW_MINIMUM": "a memory limit below Kata's 256 MiB minimum",
    "OVERHEAD_BELOW_FOOTPRINT": "overhead.podFixed.memory below the idle VMM/shim footprint charged to the pod cgroup",
    "GUEST_MEMORY_BEYOND_CGROUP": "the guest can use more memory than the pod cgroup allows the VMM",
    "HOST_NETWORK": "hostNetwork is not supported by Kata",
    "SUBPATH_EMPTYDIR": "subPath on an emptyDir volume is not supported by Kata",
    "PRIVILEGED_HOST_DEVICES": "privileged container where containerd passes the host's devices",
    "RUNTIME_SOCKET_MOUNT": "hostPath mount of a container runtime socket",
}


# ---------------------------------------------------------------- configuration

KATA_TABLES = (("hypervisor",), ("runtime",), ("agent", "kata"))


def parse_sets(items):
    """['KEY=VALUE', ...] -> [(key, value)] with the value read as YAML (5, true, [a, b], 2048)."""
    out = []
    for item in items or []:
        _need_yaml()
        if "=" not in str(item):
            raise KatafleetError("expected KEY=VALUE", key="--set", value=item, rule="--set KEY=VALUE")
        key, raw = str(item).split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def _kata_table_for(key, hypervisor):
    """'default_vcpus' or 'hypervisor.default_vcpus' or 'runtime.x' -> (table tuple, key)."""
    parts = key.split(".")
    if len(parts) > 1:
        table = tuple(parts[:-1])
        if table == ("hypervisor",):
            table = ("hypervisor", hypervisor)
        return table, parts[-1]
    for table in KATA_TABLES:
        cat = kata_rules.catalogue_for(("hypervisor", hypervisor) if table == ("hypervisor",) else table)
        if cat and key in cat:
            return (("hypervisor", hypervisor) if table == ("hypervisor",) else table), key
    return ("hypervisor", hypervisor), key


def kata_values(config_path=None, sets=None, host_cpus=None, host_memory_mib=None, containerd=None):
    """The values sizing needs: the Kata config's effective values (file, then ``sets`` on top), containerd's
    pod_annotations / privileged_without_host_devices, and the host."""
    if host_cpus is None or host_memory_mib is None:
        cpus, mem = kata_rules.host_facts()
        host_cpus = cpus if host_cpus is None else host_cpus
        host_memory_mib = mem if host_memory_mib is None else host_memory_mib
    data, source = {}, None
    if config_path:
        source, data = kata_config.load_effective([config_path])
        if source is None:
            raise KatafleetError("Kata config file does not exist", path=config_path, rule="--kata-config FILE")
        hypervisor = kata_config.find_hypervisor(data, config_path)
    else:
        hypervisor = "qemu"
        data = {"hypervisor": {"qemu": {"enable_annotations": list(SHIPPED_ENABLE_ANNOTATIONS)}}}
    ctr = dict(CONTAINERD_DEFAULTS)
    ctr.update(containerd or {})
    errors = []
    for key, value in sets or []:
        if key.startswith("containerd."):
            name = key.split(".", 1)[1]
            if name not in CONTAINERD_DEFAULTS:
                errors.append(KatafleetError("sizing reads only %s from containerd" % ", ".join(CONTAINERD_DEFAULTS),
                                             key=key, value=value, rule="containerd key"))
            elif name == "pod_annotations" and isinstance(value, str):
                ctr[name] = [v.strip() for v in value.split(",") if v.strip()]
            else:
                ctr[name] = value
            continue
        table, name = _kata_table_for(key, hypervisor)
        if name == "default_vcpus" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        problems = kata_rules.check_key(config_path or "--set", table, name, value, hypervisor)
        if problems:
            errors.extend(problems)
            continue
        node = data
        for part in table:
            node = node.setdefault(part, {})
        node[name] = value
    if errors:
        raise errors[0] if len(errors) == 1 else KatafleetError("; ".join(str(e) for e in errors))
    if not isinstance(ctr.get("pod_annotations"), list) or not isinstance(ctr.get("privileged_without_host_devices"),
                                                                          bool):
        raise KatafleetError("pod_annotations must be a list of globs and privileged_without_host_devices a boolean",
                             key="containerd", value=ctr, rule="containerd values")
    hv = ((data.get("hypervisor") or {}).get(hypervisor)) or {}
    runtime = data.get("runtime") or {}
    agent = ((data.get("agent") or {}).get("kata")) or {}
    eff = kata_rules.effective(hv, host_cpus, host_memory_mib)
    eff.update(
        hypervisor=hypervisor,
        source=source,
        enable_annotations=list(hv.get("enable_annotations") or []),
        sandbox_cgroup_only=bool(runtime.get("sandbox_cgroup_only", False)),
        static_sandbox_resource_mgmt=bool(runtime.get("static_sandbox_resource_mgmt", False)),
        debug_console_enabled=bool(agent.get("debug_console_enabled", False)),
        pod_annotations=list(ctr["pod_annotations"]),
        privileged_without_host_devices=ctr["privileged_without_host_devices"],
    )
    return eff


def overhead_from(runtimeclass_objects=None, handler=None, path=None):
    """(handler, {cpu_m, memory_bytes}) from a RuntimeClass object, or a handler's project default, or none."""
    if runtimeclass_objects:
        classes = [o for o in runtimeclass_objects if isinstance(o, dict) and o.get("kind") == "RuntimeClass"]
        if handler:
            classes = [o for o in classes if o.get("handler") == handler or
                       (o.get("metadata") or {}).get("name") == handler]
        if not classes:
            raise KatafleetError("no RuntimeClass%s found" % (" for handler %s" % handler if handler else ""),
                                 path=path, rule="--runtimeclass FILE holds a RuntimeClass")
        obj = classes[0]
        fixed = (obj.get("overhead") or {}).get("podFixed") or {}
        name = (obj.get("metadata") or {}).get("name")
        return obj.get("handler"), _overhead(fixed, path, "RuntimeClass %s" % name)
    if handler:
        runtimeclass.normalize_classes([handler])
        return handler, _overhead(runtimeclass.default_overhead(handler), path, "handler %s" % handler)
    return None, {"cpu": 0, "memory": 0}


def _overhead(fixed, path, what):
    out = {}
    for res in ("cpu", "memory"):
        if fixed.get(res) is None:
            out[res] = 0
            continue
        q = kube.parse_resource(fixed[res], {"path": path, "key": "%s, field overhead.podFixed.%s" % (what, res)})
        out[res] = kube.millis(q) if res == "cpu" else kube.integer(q)
    return out


# ---------------------------------------------------------------- workloads

def _need_yaml():
    if yaml is None:
        raise KatafleetError("reading YAML needs PyYAML (python3-yaml)", rule="PyYAML installed")


def load_documents(path):
    """Every non-empty YAML document of a file (a List's items are documents too)."""
    _need_yaml()
    try:
        with open(path) as handle:
            docs = list(yaml.safe_load_all(handle))
    except OSError as exc:
        raise KatafleetError("cannot read: %s" % exc.strerror, path=path, rule="workload file")
    except yaml.YAMLError as exc:
        raise KatafleetError("not valid YAML: %s" % exc, path=path, rule="workload file")
    return docs


def pods_from_objects(objects, path=None):
    """Pods (and pod templates) of Kubernetes objects: [{name, kind, spec, annotations, source}]."""
    out = []
    for index, obj in enumerate(objects):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise KatafleetError("a document is not a Kubernetes object (a mapping)", path=path,
                                 key="document %d" % (index + 1), rule="workload YAML")
        kind = obj.get("kind")
        if kind and kind.endswith("List") and isinstance(obj.get("items"), list):
            out.extend(pods_from_objects(obj["items"], path))
            continue
        if kind not in TEMPLATE_PATHS:
            continue  # Services, ConfigMaps, RuntimeClasses ... beside the workloads
        name = "%s/%s" % (kind, (obj.get("metadata") or {}).get("name") or "document-%d" % (index + 1))
        node = obj
        for part in TEMPLATE_PATHS[kind]:
            node = node.get(part) if isinstance(node, dict) else None
        spec = node.get("spec") if isinstance(node, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list) or not spec["containers"]:
            field = ".".join(TEMPLATE_PATHS[kind] + ("spec", "containers"))
            raise KatafleetError("has no containers", path=path, key="%s, field %s" % (name, field),
                                 rule="a pod spec lists containers")
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        out.append({"name": name, "kind": kind, "spec": spec, "annotations": annotations, "source": path,
                    "runtime_class": spec.get("runtimeClassName")})
    return out


def load_pods(paths):
    pods = []
    for path in paths:
        found = pods_from_objects(load_documents(path), path)
        if not found:
            raise KatafleetError("holds no Pod or object with a pod template (%s)" % ", ".join(sorted(TEMPLATE_PATHS)),
                                 path=path, rule="workload file")
        pods.extend(found)
    return pods


# ---------------------------------------------------------------- Kubernetes arithmetic

def container_resources(container, pod, group):
    """{name, sidecar, requests: {cpu: m, memory: bytes}, limits: {...}} with request defaulted to limit."""
    if not isinstance(container, dict):
        raise KatafleetError("a container is not a mapping", path=pod["source"], key="%s, %s" % (pod["name"], group),
                             rule="pod spec")
    cname = container.get("name") or "?"
    res = container.get("resources") or {}
    got = {"requests": {}, "limits": {}}
    for field in ("requests", "limits"):
        values = res.get(field) or {}
        if not isinstance(values, dict):
            raise KatafleetError("must be a mapping", path=pod["source"], value=values, rule="pod spec",
                                 key="%s, container %s (%s), field resources.%s" % (pod["name"], cname, group, field))
        for r in ("cpu", "memory"):
            if values.get(r) is None:
                continue
            where = {"path": pod["source"],
                     "key": "%s, container %s (%s), field resources.%s.%s" % (pod["name"], cname, group, field, r)}
            q = kube.parse_resource(values[r], where)
            got[field][r] = kube.millis(q) if r == "cpu" else kube.integer(q)
    for r, value in got["limits"].items():
        got["requests"].setdefault(r, value)
        if got["requests"][r] > value:
            raise KatafleetError("request %s is above the limit %s" % (res["requests"][r], res["limits"][r]),
                                 path=pod["source"], rule="requests <= limits",
                                 key="%s, container %s (%s), field resources.requests.%s" % (pod["name"], cname, group, r))
    sidecar = group == "initContainers" and container.get("restartPolicy") == "Always"
    return {"name": cname, "sidecar": sidecar, "requests": got["requests"], "limits": got["limits"],
            "container": container}


def effective(apps, inits, field, resource):
    """Kubernetes' pod-level value of one resource (PodRequests / PodLimits), absent values counting 0."""
    sidecars = 0
    init_peak = 0
    for c in inits:
        value = c[field].get(resource, 0)
        if c["sidecar"]:
            sidecars += value
            phase = sidecars
        else:
            phase = sidecars + value
        init_peak = max(init_peak, phase)
    return max(init_peak, sum(c[field].get(resource, 0) for c in apps) + sidecars)


def qos_class(containers):
    """GetPodQOS over init and app containers; overhead does not count."""
    requests, limits = {}, {}
    guaranteed = True
    for c in containers:
        for r, v in c["requests"].items():
            if v:
                requests[r] = requests.get(r, 0) + v
        for r, v in c["limits"].items():
            if v:
                limits[r] = limits.get(r, 0) + v
        if not all(c["limits"].get(r) for r in ("cpu", "memory")):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


# ---------------------------------------------------------------- the VM

def _annotation_values(pod, values, warnings):
    """default_vcpus / default_memory from pod annotations the config and containerd pass."""
    out = {}
    for key, raw in sorted((pod["annotations"] or {}).items()):
        if not str(key).startswith(ANNOTATION_PREFIX):
            continue
        short = key[len(ANNOTATION_PREFIX):]
        if short not in ("default_vcpus", "default_memory"):
            continue
        if not any(fnmatch.fnmatchcase(key, p) for p in values["pod_annotations"]):
            warnings.append(_warn("ANNOTATION_NOT_PASSED", "annotation %s is ignored: containerd's pod_annotations %s "
                                  "does not pass it to the runtime" % (key, values["pod_annotations"])))
            continue
        if not any(re.search(rx, short) for rx in values["enable_annotations"]):
            warnings.append(_warn("ANNOTATION_NOT_ENABLED", "annotation %s is refused: the Kata config's "
                                  "enable_annotations %s does not allow %s (the runtime fails the sandbox)"
                                  % (key, values["enable_annotations"], short)))
            continue
        try:
            number = float(str(raw)) if short == "default_vcpus" else int(str(raw))
        except ValueError:
            warnings.append(_warn("ANNOTATION_INVALID", "annotation %s = %r is not a number: the runtime fails the "
                                  "sandbox" % (key, raw)))
            continue
        if short == "default_memory" and number < kata_rules.MIN_MEMORY_MIB:
            warnings.append(_warn("ANNOTATION_INVALID", "annotation %s = %s MiB is below the %d MiB minimum: the runtime "
                                  "fails the sandbox" % (key, raw, kata_rules.MIN_MEMORY_MIB)))
            continue
        if short == "default_vcpus" and (number < 0 or number > values["host_cpus"]):
            warnings.append(_warn("ANNOTATION_INVALID", "annotation %s = %s is outside 0..%d (host CPUs): the runtime "
                                  "fails the sandbox" % (key, raw, values["host_cpus"])))
            continue
        out[short] = number
    return out


def vm_size(default_vcpus, default_memory, cpu_m, memory_bytes, values):
    """The VM as the Go runtime sizes it: (boot_vcpus, boot_mib, vcpus, mib, capped_vcpus, capped_memory)."""
    workload_mib = memory_bytes // kube.MIB  # sandboxMemoryByte >> 20 / WorkloadMemMB
    if values["static_sandbox_resource_mgmt"]:
        vcpus = int(math.ceil(default_vcpus + cpu_m / 1000.0 - 1e-9))
        mem = default_memory + workload_mib
        return vcpus, mem, vcpus, mem, False, False
    boot_vcpus = int(math.ceil(default_vcpus - 1e-9)) or 1
    want = int(math.ceil(default_vcpus + cpu_m / 1000.0 - 1e-9)) or 1
    maxv = values["default_maxvcpus"]
    vcpus, capped_v = (maxv, True) if maxv and want > maxv else (max(want, boot_vcpus), False)
    add = workload_mib
    capped_m = False
    maxmem = values["default_maxmemory"]
    if add > 0 and maxmem and default_memory + add > maxmem:
        add = max(maxmem - default_memory, 0)
        capped_m = True
    if add > 0:
        add = int(math.ceil(add / float(MEMORY_BLOCK_MIB))) * MEMORY_BLOCK_MIB  # calcHotplugMemMiBSize
    return boot_vcpus, default_memory, vcpus, default_memory + add, capped_v, capped_m


def _warn(code, message):
    return {"code": code, "message": message}


# ---------------------------------------------------------------- explain

def explain_pod(pod, values, overhead):
    """One pod's explanation (see the module docstring for the rules)."""
    spec = pod["spec"]
    apps = [container_resources(c, pod, "containers") for c in spec.get("containers") or []]
    inits = [container_resources(c, pod, "initContainers") for c in spec.get("initContainers") or []]
    everyone = inits + apps
    warnings = []

    requests, limits, vm_limits = {}, {}, {}
    for r in ("cpu", "memory"):
        requests[r] = effective(apps, inits, "requests", r) + overhead[r]
        vm_limits[r] = effective(apps, inits, "limits", r)
        declared = all(r in c["limits"] for c in everyone)
        limits[r] = vm_limits[r] + overhead[r] if declared else None
    qos = qos_class(everyone)

    ann = _annotation_values(pod, values, warnings)
    default_vcpus = ann.get("default_vcpus", values["default_vcpus"])
    default_memory = ann.get("default_memory", values["default_memory"])
    boot_v, boot_m, vcpus, mem, capped_v, capped_m = vm_size(default_vcpus, default_memory, vm_limits["cpu"],
                                                             vm_limits["memory"], values)

    if not any(c["limits"] for c in everyone):
        warnings.append(_warn("NO_LIMITS", "no container has a CPU or memory limit: the VM is only the default size "
                              "(%s vCPU / %d MiB), not unlimited" % (_num(default_vcpus), default_memory)))
    if "default_vcpus" in ann and vm_limits["cpu"]:
        warnings.append(_warn("CPU_LIMITS_AND_VCPUS_ANNOTATION", "the pod has CPU limits and a default_vcpus "
                              "annotation: use one or the other (a pod without CPU limits is better served by a larger "
                              "default_vcpus; limits on many threads do not help), never both"))
    if capped_v:
        warnings.append(_warn("HOTPLUG_CAPPED", "vCPU hot-plug is capped at default_maxvcpus %d (limits ask for %d)"
                              % (values["default_maxvcpus"],
                                 int(math.ceil(default_vcpus + vm_limits["cpu"] / 1000.0 - 1e-9)))))
    if capped_m:
        warnings.append(_warn("HOTPLUG_CAPPED", "memory hot-plug is capped at default_maxmemory %d MiB (limits ask for "
                              "%d MiB)" % (values["default_maxmemory"],
                                           default_memory + vm_limits["memory"] // kube.MIB)))
    host_cpus, host_mib = values.get("host_cpus"), values.get("host_memory_mib")
    if host_mib and mem > host_mib:
        warnings.append(_warn("VM_EXCEEDS_HOST", "VM memory %d MiB exceeds the host's %d MiB: sandbox creation fails"
                              % (mem, host_mib)))
    if host_cpus and vcpus > host_cpus:
        warnings.append(_warn("VM_EXCEEDS_HOST", "VM vCPUs %d exceed the host's %d CPUs: the pod may start and fail "
                              "later" % (vcpus, host_cpus)))
    for c in everyone:
        lim = c["limits"].get("memory")
        if lim is not None and lim < kata_rules.MIN_MEMORY_MIB * kube.MIB:
            warnings.append(_warn("MEMORY_BELOW_MINIMUM", "container %s: memory limit %s MiB is below Kata's %d MiB "
                                  "minimum for a pod" % (c["name"], kube.mib(lim), kata_rules.MIN_MEMORY_MIB)))
    if values["sandbox_cgroup_only"] and limits["memory"] is not None:
        over_mib = overhead["memory"] / float(kube.MIB)
        footprint = runtimeclass.IDLE_OVERHEAD_MIB
        if over_mib < footprint:
            warnings.append(_warn("OVERHEAD_BELOW_FOOTPRINT", "with sandbox_cgroup_only=true the VMM, shim and "
                                  "virtiofsd are charged to the pod cgroup: overhead.podFixed.memory %s MiB is below "
                                  "their idle footprint (~%d MiB measured per sandbox, seed 004): the VMM is OOM-killed "
                                  "at start" % (kube.mib(overhead["memory"]), footprint)))
        cgroup_mib = limits["memory"] / float(kube.MIB)
        if mem + footprint > cgroup_mib:
            warnings.append(_warn("GUEST_MEMORY_BEYOND_CGROUP", "with sandbox_cgroup_only=true the guest's %d MiB plus "
                                  "~%d MiB of VMM/shim/virtiofsd exceed the pod cgroup's %s MiB: the VMM is OOM-killed "
                                  "when the guest fills its memory (idle pods run fine: seed 004)"
                                  % (mem, footprint, kube.mib(limits["memory"]))))
    warnings.extend(compatibility_warnings(spec, everyone, values))

    def pair(d):
        return {"cpu_m": d["cpu"], "memory_mib": None if d["memory"] is None else kube.mib(d["memory"])}

    return {
        "name": pod["name"],
        "kind": pod["kind"],
        "source": pod["source"],
        "runtime_class": pod.get("runtime_class"),
        "qos": qos,
        "requests": pair(requests),
        "limits": pair(limits),
        "pod_cgroup": pair(limits),
        "overhead": pair(overhead),
        "vm": {"vcpus": vcpus, "memory_mib": mem, "boot_vcpus": boot_v, "boot_memory_mib": boot_m,
               "static": values["static_sandbox_resource_mgmt"], "vcpus_capped": capped_v, "memory_capped": capped_m,
               "annotations": ann},
        "warnings": warnings,
    }


def compatibility_warnings(spec, containers, values):
    """Kata compatibility findings from the field notes (seed 003)."""
    out = []
    if spec.get("hostNetwork"):
        out.append(_warn("HOST_NETWORK", "hostNetwork: true is not supported by Kata (the VM has its own network "
                         "namespace): run this pod with runc"))
    volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
    for c in containers:
        spec_c = c["container"]
        for m in spec_c.get("volumeMounts") or []:
            vol = volumes.get(m.get("name")) or {}
            if (m.get("subPath") or m.get("subPathExpr")) and "emptyDir" in vol:
                out.append(_warn("SUBPATH_EMPTYDIR", "container %s: subPath on emptyDir volume %s is not supported by "
                                 "Kata: mount the whole volume" % (c["name"], m.get("name"))))
            host = (vol.get("hostPath") or {}).get("path") or ""
            if host.rstrip("/").rsplit("/", 1)[-1] in RUNTIME_SOCKETS:
                out.append(_warn("RUNTIME_SOCKET_MOUNT", "container %s mounts the host's %s: a runtime socket does not "
                                 "work through Kata's shared filesystem; use a Docker-in-Docker sidecar instead"
                                 % (c["name"], host)))
        if (spec_c.get("securityContext") or {}).get("privileged") and not values["privileged_without_host_devices"]:
            out.append(_warn("PRIVILEGED_HOST_DEVICES", "container %s is privileged and containerd's "
                             "privileged_without_host_devices is false: every host device is passed into the VM"
                             % c["name"]))
    return out


def explain(pods, values, overhead, handler=None):
    """{'pods': [...], 'config': {...}, 'notes': [...]} for loaded pods."""
    return {
        "pods": [explain_pod(p, values, overhead) for p in pods],
        "config": {k: values.get(k) for k in ("source", "hypervisor", "default_vcpus", "default_memory",
                                              "default_maxvcpus", "default_maxmemory", "sandbox_cgroup_only",
                                              "static_sandbox_resource_mgmt", "host_cpus", "host_memory_mib")},
        "handler": handler,
        "notes": [METRICS_NOTE],
    }


def _num(value):
    return ("%d" % value) if float(value).is_integer() else ("%g" % value)


def table(report):
    """A readable table of a report."""
    def fmt_cpu(m):
        return "-" if m is None else ("%d" % (m // 1000) if m % 1000 == 0 else "%dm" % m)

    def fmt_mem(v):
        return "-" if v is None else "%sMi" % v

    head = ("POD", "QOS", "REQUESTS", "LIMITS", "POD CGROUP", "VM BOOT", "VM", "WARNINGS")
    rows = []
    for p in report["pods"]:
        vm = p["vm"]
        rows.append((p["name"], p["qos"],
                     "%s / %s" % (fmt_cpu(p["requests"]["cpu_m"]), fmt_mem(p["requests"]["memory_mib"])),
                     "%s / %s" % (fmt_cpu(p["limits"]["cpu_m"]), fmt_mem(p["limits"]["memory_mib"])),
                     "%s / %s" % (fmt_cpu(p["pod_cgroup"]["cpu_m"]), fmt_mem(p["pod_cgroup"]["memory_mib"])),
                     "%d vCPU / %dMi" % (vm["boot_vcpus"], vm["boot_memory_mib"]),
                     "%d vCPU / %dMi%s" % (vm["vcpus"], vm["memory_mib"], " (static)" if vm["static"] else ""),
                     ",".join(w["code"] for w in p["warnings"]) or "-"))
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in [head] + rows]
    for p in report["pods"]:
        for w in p["warnings"]:
            lines.append("%s: %s: %s" % (p["name"], w["code"], w["message"]))
    lines.extend("note: %s" % n for n in report["notes"])
    return "\n".join(lines) + "\n"
