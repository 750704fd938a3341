"""Where Kata's host processes must be, and where they are: the cgroup placement verifier.

Rules (KC docs/design/host-cgroups.md; DOMAIN.md section 5; seeds 002, 004):
- sandbox_cgroup_only=true: the shim joins the sandbox cgroup before it starts anything, so the shim,
  the VMM, virtiofsd and all their threads are in the pod's sandbox cgroup:
  cgroupfs ``/kubepods[/<qos>]/pod<uid>/kata_<sandbox>``, systemd
  ``/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/cri-containerd-<sandbox>.scope``.
- sandbox_cgroup_only=false: shim, VMM and virtiofsd in ``/kata_overhead/<sandbox>``; only the vCPU threads
  in the pod's ``kata_<sandbox>`` (cgroup v1). On cgroup v2 the whole VMM process follows its vCPU threads
  into the pod cgroup (KC issue #4886). With the systemd driver this mode is unsupported (KC issue #2963).
- A Kata process in ``/system.slice/containerd.service`` (where runc shims live) is misplaced (KC PR #13338).
- comm is cut to 15 characters: match comm, then confirm with argv[0] or exe basename.
- cgroup v1 ``cgroup.procs`` lists a process when any of its threads is there: check every thread.
- v1 or v2 is decided by the filesystem mounted at /sys/fs/cgroup (the last mount there).

Everything here reads a ``proc_root`` / mounts text passed in, so unit tests can feed it files.
"""

import json
import os
import re
import socket

# role -> (comm values, accepted argv0/exe basenames)
VMM_NAMES = {
    "qemu-system-x86": ("qemu-system-x86_64",),
    "qemu-system-aar": ("qemu-system-aarch64",),
    "qemu-kvm": ("qemu-kvm",),
    "cloud-hyperviso": ("cloud-hypervisor",),
    "firecracker": ("firecracker",),
}
SHIM_COMM = "containerd-shim"
SHIM_NAME = "containerd-shim-kata-v2"
VIRTIOFSD = "virtiofsd"
VCPU_THREAD = re.compile(r"^CPU \d+/(KVM|TCG)$")
RUNC_PLACES = ("/system.slice/containerd.service",)
V1_SKIP = ("name=systemd",)  # named hierarchies carry no resource controls


def cgroup_version(mounts_text, mountpoint="/sys/fs/cgroup"):
    fstype = None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == mountpoint:
            fstype = parts[2]
    if fstype is None:
        raise ValueError("nothing is mounted at %s" % mountpoint)
    return 2 if fstype == "cgroup2" else 1


def parse_cgroup_file(text, version):
    """``/proc/<pid>/task/<tid>/cgroup`` -> {controller: path}; v2 -> {"": path}."""
    out = {}
    for line in text.splitlines():
        hid, ctrls, path = line.split(":", 2)
        if version == 2:
            if hid == "0":
                out[""] = path
        elif hid != "0" and ctrls and ctrls not in V1_SKIP:
            for c in ctrls.split(","):
                out[c] = path
    return out


# ---------- expected paths ----------

def pod_sandbox_cgroup(driver, sandbox, pod_uid="*", qos="burstable"):
    """The pod's sandbox cgroup path for a driver (cgroupfs or systemd)."""
    if driver == "systemd":
        uid = pod_uid.replace("-", "_")
        if qos == "guaranteed":
            return "/kubepods.slice/kubepods-pod%s.slice/cri-containerd-%s.scope" % (uid, sandbox)
        return "/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice/cri-containerd-%s.scope" % (
            qos, qos, uid, sandbox)
    qos_part = "" if qos == "guaranteed" else "/" + qos
    return "/kubepods%s/pod%s/kata_%s" % (qos_part, pod_uid, sandbox)


def overhead_cgroup(sandbox):
    return "/kata_overhead/%s" % sandbox


def pod_patterns(sandbox):
    """Regexes of the sandbox cgroup, any pod and QoS, per driver -> groups (qos, uid)."""
    sb = re.escape(sandbox)
    return {
        "cgroupfs": re.compile(r"^/kubepods(?:/(burstable|besteffort))?/pod([0-9a-fA-F-]+)/kata_%s$" % sb),
        "systemd": re.compile(r"^/kubepods\.slice/(?:kubepods-(burstable|besteffort)\.slice/)?"
                              r"kubepods-(?:(?:burstable|besteffort)-)?pod([0-9a-fA-F_]+)\.slice/"
                              r"cri-containerd-%s\.scope$" % sb),
    }


def match_pod(path, sandbox):
    """(driver, qos, uid) when ``path`` is this sandbox's pod cgroup, else None."""
    for driver, rx in pod_patterns(sandbox).items():
        m = rx.match(path or "")
        if m:
            uid = m.group(2).replace("_", "-")
            return driver, m.group(1) or "guaranteed", uid
    return None


def expected_for(role, mode_only, version, driver, sandbox, pod):
    """The path a thread of ``role`` (shim, virtiofsd, vmm, vcpu) must be in.

    ``pod``: (qos, uid) of the sandbox when known, else None (the path is then shown with wildcards)."""
    qos, uid = pod if pod else ("burstable", "*")
    podcg = pod_sandbox_cgroup(driver, sandbox, uid, qos)
    if pod is None:
        podcg = podcg.replace("/burstable/", "[/<qos>]/").replace("kubepods-burstable", "kubepods-<qos>")
    if mode_only:
        return podcg
    if role == "vcpu" or (role == "vmm" and version == 2):
        return podcg
    return overhead_cgroup(sandbox)


# ---------- reading /proc ----------

def _read(path, binary=False):
    with open(path, "rb" if binary else "r") as handle:
        return handle.read()


def _ppid(proc_root, pid):
    """PPID from /proc/<pid>/stat (the comm in parentheses may contain spaces)."""
    stat = _read(os.path.join(proc_root, str(pid), "stat"))
    return int(stat[stat.rindex(")") + 2:].split()[1])


class Proc(object):
    __slots__ = ("pid", "ppid", "comm", "argv", "exe", "root")

    def __init__(self, root, pid):
        self.root = root
        self.pid = pid
        base = os.path.join(root, str(pid))
        self.comm = _read(os.path.join(base, "comm")).rstrip("\n")
        self.ppid = _ppid(root, pid)
        self.argv = [a.decode("utf-8", "replace") for a in _read(os.path.join(base, "cmdline"), True).split(b"\0") if a]
        try:
            self.exe = os.readlink(os.path.join(base, "exe"))
        except OSError:
            self.exe = ""

    def names(self):
        return {os.path.basename(self.argv[0]) if self.argv else "", os.path.basename(self.exe).replace(" (deleted)", "")}

    def threads(self):
        out = []
        tdir = os.path.join(self.root, str(self.pid), "task")
        for tid in sorted(os.listdir(tdir), key=int):
            try:
                comm = _read(os.path.join(tdir, tid, "comm")).rstrip("\n")
                cg = _read(os.path.join(tdir, tid, "cgroup"))
            except OSError:
                continue
            out.append((int(tid), comm, cg))
        return out

    def arg_after(self, flag):
        for i, a in enumerate(self.argv[:-1]):
            if a == flag:
                return self.argv[i + 1]
        return None


def scan(proc_root="/proc"):
    """Kata-related processes: {"shims": [...], "vmms": [...], "virtiofsd": [...], "all": {pid: Proc}}."""
    procs = {}
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            comm = _read(os.path.join(proc_root, entry, "comm")).rstrip("\n")
        except OSError:
            continue
        if comm not in (SHIM_COMM, VIRTIOFSD) and comm not in VMM_NAMES:
            continue
        try:
            procs[int(entry)] = Proc(proc_root, int(entry))
        except (OSError, ValueError):
            continue
    out = {"shims": [], "vmms": [], "virtiofsd": [], "all": procs}
    for p in procs.values():
        if p.comm == SHIM_COMM and SHIM_NAME in p.names():
            out["shims"].append(p)
        elif p.comm in VMM_NAMES and set(VMM_NAMES[p.comm]) & p.names():
            out["vmms"].append(p)
        elif p.comm == VIRTIOFSD and VIRTIOFSD in p.names():
            out["virtiofsd"].append(p)
    return out


def _ancestor_shim(p, shim_pids, proc_root):
    """The shim pid above ``p`` (walking PPIDs), or None."""
    seen = 0
    pid = p.ppid
    while pid > 1 and seen < 64:
        if pid in shim_pids:
            return pid
        try:
            pid = _ppid(proc_root, pid)
        except (OSError, ValueError):
            return None
        seen += 1
    return None


def vmm_sandbox_from_args(p):
    """Kata names the VM ``-name sandbox-<id>[,...]``."""
    name = p.arg_after("-name") or ""
    m = re.match(r"^(?:guest=)?sandbox-([^,]+)", name)
    return m.group(1) if m else None


def qmp_vcpu_tids(p, timeout=2.0):
    """vCPU thread ids from QMP query-cpus-fast, when the VMM has a QMP unix socket on its command line."""
    spec = p.arg_after("-qmp") or ""
    m = re.match(r"^unix:(?:path=)?([^,]+)", spec)
    if not m:
        return None
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(m.group(1))
        f = s.makefile("rw")
        f.readline()
        reply = {}
        for cmd in ({"execute": "qmp_capabilities"}, {"execute": "query-cpus-fast"}):
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        s.close()
        return [c["thread-id"] for c in reply.get("return", [])]
    except (OSError, ValueError, KeyError):
        return None


# ---------- the check ----------

def verify(sandbox_cgroup_only, version, proc_root="/proc", driver="auto", use_qmp=True, expect_virtiofsd=True):
    """Check every Kata thread. Returns a report dict: sandboxes, rows, misplaced, summary."""
    found = scan(proc_root)
    procs = found["all"]
    shim_pids = {p.pid for p in found["shims"]}
    sandboxes = {}
    for shim in found["shims"]:
        sb = shim.arg_after("-id") or "pid%d" % shim.pid
        sandboxes[sb] = {"shim": shim, "vmms": [], "virtiofsd": []}
    orphans = []
    for role in ("vmms", "virtiofsd"):
        for p in found[role]:
            owner = _ancestor_shim(p, shim_pids, proc_root)
            sb = None
            if owner is not None:
                sb = procs[owner].arg_after("-id") or "pid%d" % owner
            elif role == "vmms":
                sb = vmm_sandbox_from_args(p)
            if sb in sandboxes:
                sandboxes[sb][role].append(p)
            else:
                orphans.append((role, p, sb))

    rows = []

    def add(sb, role, p, tid, tcomm, expected, actual, verdict, note=""):
        rows.append({"sandbox": sb, "role": role, "pid": p.pid if p else None, "tid": tid, "comm": tcomm,
                     "expected": expected, "actual": actual, "verdict": verdict, "note": note})

    for sb in sorted(sandboxes):
        entry = sandboxes[sb]
        # threads of every process of the sandbox, with their role
        members = [("shim", entry["shim"])] + [("vmm", p) for p in entry["vmms"]] + \
                  [("virtiofsd", p) for p in entry["virtiofsd"]]
        threads = []
        for role, p in members:
            vcpus = None
            if role == "vmm":
                tlist = p.threads()
                named = {tid for tid, comm, _cg in tlist if VCPU_THREAD.match(comm)}
                vcpus = named or (set(qmp_vcpu_tids(p) or []) if use_qmp else set())
                if not vcpus:
                    add(sb, "vcpu", p, None, p.comm, "", "", "unknown",
                        "cannot tell vCPU threads (no 'CPU n/KVM' thread names, no QMP socket)")
            else:
                tlist = p.threads()
            for tid, comm, cg in tlist:
                r = "vcpu" if vcpus and tid in vcpus else role
                threads.append((r, p, tid, comm, parse_cgroup_file(cg, version)))
        # the pod (driver, qos, uid): from where the pod-side threads really are
        pod_side = [t for t in threads if sandbox_cgroup_only or t[0] == "vcpu" or (t[0] == "vmm" and version == 2)]
        pod, sb_driver = None, None
        for t in pod_side:
            for path in t[4].values():
                m = match_pod(path, sb)
                if m:
                    sb_driver, pod = m[0], (m[1], m[2])
                    break
            if pod:
                break
        if driver != "auto":
            sb_driver = driver
        sb_driver = sb_driver or "cgroupfs"
        if not sandbox_cgroup_only and sb_driver == "systemd":
            add(sb, "shim", entry["shim"], entry["shim"].pid, entry["shim"].comm, "sandbox_cgroup_only=true",
                "sandbox_cgroup_only=false", "unsupported",
                "sandbox_cgroup_only=false is not supported with the systemd cgroup driver (KC issue #2963)")
        if not entry["vmms"]:
            add(sb, "vmm", None, None, "", "a VMM process under shim %d" % entry["shim"].pid, "none", "missing",
                "the shim has no VMM child")
        if expect_virtiofsd and not entry["virtiofsd"] and entry["vmms"]:
            add(sb, "virtiofsd", None, None, "", "virtiofsd under shim %d" % entry["shim"].pid, "none", "missing",
                "shared_fs is virtio-fs but no virtiofsd runs for this sandbox")
        for role, p, tid, comm, cgs in threads:
            expected = expected_for(role, sandbox_cgroup_only, version, sb_driver, sb, pod)
            bad = {}
            for ctrl, path in sorted(cgs.items()):
                if path != expected:  # a wildcard expectation (pod unknown) never matches: reported
                    bad[ctrl] = path
            if not bad:
                add(sb, role, p, tid, comm, expected, expected, "ok")
                continue
            actual = sorted(set(bad.values()))
            note = ""
            if any(a.startswith(RUNC_PLACES) for a in actual):
                note = "in a runc-style place (containerd.service): the Kata process escaped the pod/overhead cgroup"
            ctrls = sorted(bad) if version == 1 else []
            add(sb, role, p, tid, comm, expected, ", ".join(actual), "misplaced",
                (note + ("; " if note and ctrls else "") + ("controllers: %s" % ",".join(ctrls) if ctrls else "")))
    for role, p, sb in orphans:
        add(sb or "?", role.rstrip("s"), p, p.pid, p.comm, "under a Kata shim", "no shim ancestor", "orphan",
            "a Kata %s with no containerd-shim-kata-v2 above it" % role.rstrip("s"))

    bad_rows = [r for r in rows if r["verdict"] != "ok"]
    summary = {"sandboxes": len(sandboxes), "threads_checked": sum(1 for r in rows if r["tid"] is not None),
               "misplaced": len(bad_rows), "cgroup_version": version, "sandbox_cgroup_only": sandbox_cgroup_only}
    return {"summary": summary, "rows": rows, "problems": bad_rows, "ok": not bad_rows}


def format_table(rows, limit=60):
    """A readable table of (problem) rows."""
    head = ("SANDBOX", "ROLE", "PID", "TID", "COMM", "VERDICT", "EXPECTED", "ACTUAL")
    data = [(r["sandbox"][:20], r["role"], str(r["pid"] or "-"), str(r["tid"] or "-"), r["comm"][:16], r["verdict"],
             r["expected"], r["actual"] + ("  (%s)" % r["note"] if r["note"] else "")) for r in rows[:limit]]
    widths = [max(len(x[i]) for x in [head] + data) for i in range(len(head) - 1)]
    lines = []
    for row in [head] + data:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1])
    if len(rows) > limit:
        lines.append("... and %d more" % (len(rows) - limit))
    return "\n".join(lines)
