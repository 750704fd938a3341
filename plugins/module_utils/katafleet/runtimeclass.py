"""RuntimeClass objects for Kata handlers: API version per Kubernetes version, overhead defaults per handler,
the overhead-versus-VM-size check, and validation against the target version's schema.

Rules (DOMAIN.md section 4; kubernetes.io RuntimeClass docs; KEP-688 pod overhead):
- ``handler`` equals the containerd runtime name (a DNS label);
- ``node.k8s.io/v1beta1`` from 1.14 to 1.24 (removed in 1.25), ``node.k8s.io/v1`` from 1.20: katafleet uses v1beta1
  before 1.20 and v1 from 1.20;
- ``overhead`` exists from 1.16 (PodOverhead alpha, off until 1.18): earlier versions are refused;
- overheads shipped by kata-deploy: kata-qemu 320Mi/250m (raised from 160Mi in 2026 after VMM OOM kills),
  kata-clh / kata-fc / kata-dragonball 130Mi/250m;
- with sandbox_cgroup_only=true the VMM is charged to the pod: its guest memory outside container limits
  (default_memory) plus the host-side overhead (~110 MiB measured idle per sandbox, +65 MiB with the agent's debug
  console: seeds 002, 004) must fit in overhead.podFixed.memory, or the VMM is OOM-killed under load.
"""

import json
import os
import re
import subprocess
import sys

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.containerd import check_handler_name
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kube
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError, raise_all

OVERHEAD_DEFAULTS = [  # (handler pattern, memory, cpu) first match wins
    (r"^kata-(clh|fc|firecracker|dragonball|cloud-hypervisor)", "130Mi", "250m"),
    (r"^kata", "320Mi", "250m"),
]
IDLE_OVERHEAD_MIB = 110
DEBUG_CONSOLE_MIB = 65


def quantity_bytes(q):
    """Kubernetes quantity -> number ('320Mi' -> 335544320, '250m' -> 0.25); parsed by kube.parse_quantity."""
    try:
        return float(kube.parse_resource(q))
    except KatafleetError:
        raise KatafleetError("not a Kubernetes quantity", value=q, rule="quantity like 320Mi or 250m")


def api_version(version):
    if version < (1, 16):
        raise KatafleetError("RuntimeClass cannot carry overhead before Kubernetes 1.16 (the field does not exist)",
                             key="kubernetes_version", value="%d.%d" % version, rule="overhead needs 1.16+")
    return "node.k8s.io/v1" if version >= (1, 20) else "node.k8s.io/v1beta1"


def default_overhead(handler):
    for pattern, mem, cpu in OVERHEAD_DEFAULTS:
        if re.match(pattern, handler):
            return {"memory": mem, "cpu": cpu}
    return {"memory": "320Mi", "cpu": "250m"}


def normalize_classes(classes):
    """Handler names or {handler, name, overhead} -> dicts with name and overhead filled in."""
    out, errors = [], []
    for c in classes:
        c = {"handler": c} if isinstance(c, str) else dict(c or {})
        handler = c.get("handler")
        name_errors = check_handler_name(handler)
        if name_errors:
            errors.extend(name_errors)
            continue
        overhead = dict(default_overhead(handler))
        overhead.update(c.get("overhead") or {})
        out.append({"handler": handler, "name": c.get("name") or handler, "overhead": overhead})
    raise_all(errors)
    return out


def check_objects(objects, version):
    """Errors for rendered objects: kind, apiVersion for the version, handler a DNS label, quantities."""
    errors = []
    want_api = api_version(version)
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name")
        if obj.get("kind") != "RuntimeClass":
            errors.append(KatafleetError("not a RuntimeClass", key=name, value=obj.get("kind"), rule="kind"))
            continue
        if obj.get("apiVersion") != want_api:
            errors.append(KatafleetError("Kubernetes %d.%d needs %s" % (version + (want_api,)), key=name,
                                         value=obj.get("apiVersion"), rule="RuntimeClass apiVersion per version"))
        errors.extend(check_handler_name(obj.get("handler")))
        fixed = ((obj.get("overhead") or {}).get("podFixed") or {})
        for res in ("memory", "cpu"):
            if res not in fixed:
                errors.append(KatafleetError("overhead.podFixed.%s missing" % res, key=name, rule="overhead set"))
            else:
                try:
                    quantity_bytes(fixed[res])
                except KatafleetError as exc:
                    errors.append(KatafleetError(str(exc), key="%s.overhead.podFixed.%s" % (name, res),
                                                 value=fixed[res], rule="quantity"))
    raise_all(errors)


def overhead_warnings(objects, node_effective):
    """Warnings where overhead.podFixed.memory is below what the nodes' Kata configs imply.

    ``node_effective``: {node: effective dict from kata_config (default_memory, sandbox_cgroup_only, ...)}."""
    out = []
    for obj in objects:
        name = obj["metadata"]["name"]
        mem = quantity_bytes(obj["overhead"]["podFixed"]["memory"]) / 2 ** 20
        for node, eff in sorted(node_effective.items()):
            if not eff or not eff.get("sandbox_cgroup_only"):
                continue
            implied = eff.get("default_memory", 2048) + IDLE_OVERHEAD_MIB + (
                DEBUG_CONSOLE_MIB if eff.get("debug_console_enabled") else 0)
            if mem < implied:
                out.append(
                    "RuntimeClass %s: overhead.podFixed.memory %s (%d MiB) is below the %d MiB that %s's Kata config "
                    "implies with sandbox_cgroup_only=true (default_memory %d MiB of guest memory outside container "
                    "limits + ~%d MiB VMM/shim/virtiofsd): the VMM is charged to the pod cgroup and gets OOM-killed "
                    "when the guest uses its memory" % (name, obj["overhead"]["podFixed"]["memory"], mem, implied, node,
                                                        eff.get("default_memory", 2048), IDLE_OVERHEAD_MIB))
    return out


def validate_schema(obj, version, legacy_path=None):
    """Validate with kubernetes-validate (strict) against the target version's schema.

    kubernetes-validate 1.37 ships schemas for 1.25+; for older versions the 1.24.1 release (schemas 1.10-1.24) is
    used from ``legacy_path`` (installed there with `pip install --target`)."""
    ver = "%d.%d.0" % version
    code = ("import json, sys, kubernetes_validate as kv\n"
            "obj = json.load(sys.stdin)\n"
            "try:\n"
            "    kv.validate(obj, sys.argv[1], strict=True)\n"
            "except kv.ValidationError as e:\n"
            "    print(json.dumps({'error': e.message, 'path': '.'.join(str(p) for p in e.path)})); sys.exit(1)\n"
            "except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:\n"
            "    print(json.dumps({'error': str(getattr(e, 'message', e))})); sys.exit(2)\n")
    env = dict(os.environ)
    if version < (1, 25):
        if not legacy_path or not os.path.isdir(legacy_path):
            raise KatafleetError("validating for Kubernetes %d.%d needs kubernetes-validate 1.24.1 installed at %s "
                                 "(pip install --no-deps --target DIR kubernetes-validate==1.24.1)" % (version + (legacy_path,)),
                                 key="kubernetes_version", rule="schema for the target version")
        env["PYTHONPATH"] = legacy_path + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code, ver], input=json.dumps(obj), env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return None
    try:
        detail = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = {"error": (proc.stderr or proc.stdout).strip()[-500:]}
    where = (" at %s" % detail["path"]) if detail.get("path") else ""
    return "%s does not validate against Kubernetes %s%s: %s" % (obj.get("metadata", {}).get("name"), ver, where,
                                                                 detail.get("error"))
