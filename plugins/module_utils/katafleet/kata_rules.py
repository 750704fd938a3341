"""Kata's own rules for configuration.toml values: key check, types, limits, effective values.

Every rule names its upstream source (KC = kata-containers/kata-containers):
- clamps and defaults: KC src/runtime/pkg/katautils/config.go (defaultVCPUs, defaultMaxVCPUs,
  defaultMemSz, defaultMemSlots) and src/runtime/virtcontainers/hypervisor.go
  (MinHypervisorMemory = 256);
- memory above 256 GiB unsupported, 1 vCPU / 256 MiB minimum: field notes (seeds 000, 001);
- enable_virtio_mem is QEMU only: KC docs/how-to/how-to-use-virtio-mem-with-kata.md.
"""

import difflib
import os

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.kata_keys import HYPERVISOR_ONLY, KEYS, RETIRED_KEYS

MIN_MEMORY_MIB = 256  # vc.MinHypervisorMemory
DEFAULT_MEMORY_MIB = 2048  # defaultMemSize: what Kata silently uses below MIN_MEMORY_MIB
MAX_MEMORY_MIB = 256 * 1024  # seeds: above 256 GiB is unsupported (undefined behaviour)
DEFAULT_VCPUS = 1  # defaultVCPUCount
DEFAULT_MEM_SLOTS = 10  # defaultMemSlots
MAX_VCPUS_AMD64 = 240  # govmm.MaxVCPUs() on amd64


def catalogue_for(table):
    """The key catalogue for a table tuple, or None for a table Kata does not read."""
    if len(table) == 2 and table[0] == "hypervisor":
        return KEYS["hypervisor"]
    return KEYS.get(".".join(table))


def known_tables(hypervisor):
    return ["hypervisor.%s" % hypervisor] + [t for t in KEYS if t != "hypervisor"]


def type_ok(kind, value):
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


def check_key(path, table, key, value, hypervisor):
    """Errors (list of KatafleetError) for writing ``key = value`` into ``table``."""
    dotted = ".".join(table)
    cat = catalogue_for(table)
    if cat is None:
        return [KatafleetError(
            "Kata reads no table [%s]; known tables: %s" % (dotted, ", ".join(known_tables(hypervisor))),
            path=path, key=dotted, rule="unknown Kata table")]
    if key in RETIRED_KEYS:
        return [KatafleetError(RETIRED_KEYS[key], path=path, key="%s.%s" % (dotted, key), value=value,
                               rule="not an upstream Kata key")]
    if key not in cat:
        close = difflib.get_close_matches(key, list(cat), n=1, cutoff=0.6)
        hint = "; did you mean %r?" % close[0] if close else ""
        return [KatafleetError(
            "Kata does not know this key in [%s] and would silently ignore it%s" % (dotted, hint),
            path=path, key="%s.%s" % (dotted, key), value=value, rule="unknown Kata key")]
    kind = cat[key]
    if not type_ok(kind, value):
        want = {"number": "a number", "int": "an integer", "bool": "a boolean (true/false)",
                "str": "a string", "list": "a list of strings"}[kind]
        return [KatafleetError("must be %s, got %s" % (want, type(value).__name__),
                               path=path, key="%s.%s" % (dotted, key), value=value, rule="wrong type")]
    only = HYPERVISOR_ONLY.get(key)
    if only and table[0] == "hypervisor" and table[1] not in only:
        return [KatafleetError(
            "only honoured by %s; [hypervisor.%s] ignores it" % (", ".join(only), table[1]),
            path=path, key="%s.%s" % (dotted, key), value=value, rule="hypervisor-specific key")]
    return []


def check_values(path, hv_table, hv, changed_keys):
    """Rules across the final hypervisor values. Returns (errors, warnings).

    A rule broken by a key this run changes is an error; one that the file already broke and this
    run does not touch is only a warning (the run must still be able to fix other keys).
    """
    errors, warnings = [], []

    def report(keys, msg, value, rule):
        if any(k in changed_keys for k in keys):
            errors.append(KatafleetError(msg, path=path, key="%s.%s" % (hv_table, keys[0]), value=value, rule=rule))
        else:
            warnings.append("%s: %s.%s = %r: %s (%s; already in the file)" % (path, hv_table, keys[0], value, msg, rule))

    mem = hv.get("default_memory")
    if mem is not None and not isinstance(mem, bool) and isinstance(mem, int):
        if mem < MIN_MEMORY_MIB:
            report(["default_memory"],
                   "below %d MiB Kata silently uses %d MiB instead" % (MIN_MEMORY_MIB, DEFAULT_MEMORY_MIB),
                   mem, "default_memory >= %d (KC config.go defaultMemSz)" % MIN_MEMORY_MIB)
        elif mem > MAX_MEMORY_MIB:
            report(["default_memory"], "above 256 GiB (%d MiB) is unsupported by Kata" % MAX_MEMORY_MIB,
                   mem, "default_memory <= %d" % MAX_MEMORY_MIB)
    maxmem = hv.get("default_maxmemory")
    if isinstance(mem, int) and isinstance(maxmem, int) and maxmem > 0 and mem > maxmem:
        report(["default_memory", "default_maxmemory"], "default_memory exceeds default_maxmemory %d" % maxmem,
               mem, "default_memory <= default_maxmemory")
    vcpus, maxv = hv.get("default_vcpus"), hv.get("default_maxvcpus")
    if isinstance(vcpus, (int, float)) and isinstance(maxv, int) and maxv > 0 and vcpus > maxv:
        report(["default_vcpus", "default_maxvcpus"], "default_vcpus exceeds default_maxvcpus %d" % maxv,
               vcpus, "default_vcpus <= default_maxvcpus")
    slots = hv.get("memory_slots")
    if isinstance(slots, int) and slots < 0:
        report(["memory_slots"], "must not be negative", slots, "memory_slots >= 0")
    return errors, warnings


def host_facts():
    """CPU count as Go's runtime.NumCPU sees it (affinity) and MemTotal in MiB."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count() or 1
    mem_mib = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    mem_mib = int(line.split()[1]) // 1024
                    break
    except OSError:  # pragma: no cover
        pass
    return cpus, mem_mib


def effective(hv, host_cpus, host_mem_mib):
    """The values Kata will really use, after its own clamps (KC katautils/config.go)."""
    maxcap = min(host_cpus, MAX_VCPUS_AMD64)
    req_max = hv.get("default_maxvcpus", 0) or 0
    if req_max == 0 or req_max >= host_cpus:
        req_max = host_cpus
    maxvcpus = min(req_max, MAX_VCPUS_AMD64)
    vcpus = hv.get("default_vcpus", DEFAULT_VCPUS)
    if vcpus is None:
        vcpus = DEFAULT_VCPUS
    if vcpus < 0 or vcpus > maxcap:
        vcpus = maxcap
    elif vcpus == 0:
        vcpus = DEFAULT_VCPUS
    mem = hv.get("default_memory", DEFAULT_MEMORY_MIB) or 0
    if mem < MIN_MEMORY_MIB:
        mem = DEFAULT_MEMORY_MIB
    maxmem = hv.get("default_maxmemory", 0) or 0
    if host_mem_mib:
        if maxmem == 0 or maxmem > host_mem_mib:
            maxmem = host_mem_mib
    slots = hv.get("memory_slots", DEFAULT_MEM_SLOTS) or DEFAULT_MEM_SLOTS
    return {
        "default_vcpus": vcpus,
        "default_maxvcpus": maxvcpus,
        "default_memory": mem,
        "default_maxmemory": maxmem,
        "memory_slots": slots,
        "host_cpus": host_cpus,
        "host_memory_mib": host_mem_mib,
    }


def clamp_warnings(path, hv_table, hv, eff):
    """Warnings where Kata would silently clamp what the file says."""
    out = []
    vcpus = hv.get("default_vcpus")
    if isinstance(vcpus, (int, float)) and vcpus != eff["default_vcpus"] and vcpus != 0:
        out.append("%s: %s.default_vcpus = %s: Kata clamps it to %s (host has %d CPUs)"
                   % (path, hv_table, vcpus, eff["default_vcpus"], eff["host_cpus"]))
    maxv = hv.get("default_maxvcpus")
    if isinstance(maxv, int) and maxv > eff["host_cpus"]:
        out.append("%s: %s.default_maxvcpus = %d: Kata clamps it to %d (host CPUs)"
                   % (path, hv_table, maxv, eff["default_maxvcpus"]))
    maxmem = hv.get("default_maxmemory")
    if isinstance(maxmem, int) and eff["host_memory_mib"] and maxmem > eff["host_memory_mib"]:
        out.append("%s: %s.default_maxmemory = %d: Kata clamps it to host RAM %d MiB"
                   % (path, hv_table, maxmem, eff["host_memory_mib"]))
    mem = hv.get("default_memory")
    if isinstance(mem, int) and eff["host_memory_mib"] and mem > eff["host_memory_mib"]:
        out.append("%s: %s.default_memory = %d MiB exceeds host RAM %d MiB: sandboxes will fail to start"
                   % (path, hv_table, mem, eff["host_memory_mib"]))
    return out
