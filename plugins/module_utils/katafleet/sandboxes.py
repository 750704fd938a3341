"""Which runtime handler does each sandbox running on this node use? (Removing a handler while its
sandboxes run leaves them without a runtime for their next container or their teardown.)

Two sources, best first:
1. containerd's own record. The CRI plugin stores, on every pod sandbox container, the extension
   ``io.cri-containerd.sandbox.metadata`` whose ``Metadata.RuntimeHandler`` is the handler the kubelet asked
   for (containerd pkg/cri/store/sandbox/metadata.go, the same in 1.6 - 2.x); ``ctr -n <ns> containers info
   <id>`` prints it (base64 JSON). This is what tells handlers apart that share one shim binary.
2. The shim processes in /proc. containerd starts one shim per sandbox as ``<binary> -namespace <ns>
   -address ... -id <sandbox id>`` (runtime/v2/shim/util.go); the binary is the handler's ``runtime_path``, or
   ``containerd-shim-<name>-<version>`` on PATH derived from its ``runtime_type``
   (``io.containerd.kata.v2`` -> ``containerd-shim-kata-v2``). Kata's Go shim serves kata-qemu, kata-clh,
   ... alike (only the per-handler ConfigPath differs, and it reaches the shim over the shim API, not on its
   command line), so a shim whose sandbox containerd does not know counts for every handler sharing its
   binary: the refusal errs on the safe side and says so.
A shim is matched by ``/proc/<pid>/exe`` (resolved) or ``argv[0]``; the 15-character comm is not used
(LAB-NOTES section 2).
"""

import base64
import json
import os
import re
import subprocess

CRI_SANDBOX_EXTENSION = "io.cri-containerd.sandbox.metadata"


def shim_binary(handler):
    """(path or None, basename) of the shim binary containerd starts for a handler definition."""
    path = handler.get("runtime_path")
    if path:
        return path, os.path.basename(path)
    m = re.match(r"^io\.containerd\.(.+)\.(v\d+)$", handler.get("runtime_type") or "")
    name = "containerd-shim-%s-%s" % (m.group(1).replace(".", "-"), m.group(2)) if m else None
    return None, name


def _read(path, binary=False):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return data if binary else data.decode("utf-8", "replace")
    except OSError:
        return None


def shim_processes(proc="/proc"):
    """[{pid, exe, argv, id, namespace}] of processes started like a containerd shim (``-id`` argument)."""
    out = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        raw = _read(os.path.join(proc, entry, "cmdline"), binary=True)
        if not raw:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]
        if "-id" not in argv[:-1] or argv[-1:] == ["start"] or "delete" in argv:
            continue
        sid = argv[argv.index("-id") + 1]
        ns = argv[argv.index("-namespace") + 1] if "-namespace" in argv[:-1] else None
        try:
            exe = os.readlink(os.path.join(proc, entry, "exe"))
        except OSError:
            exe = None
        out.append({"pid": int(entry), "exe": exe, "argv": argv, "id": sid, "namespace": ns})
    return sorted(out, key=lambda p: p["pid"])


def _matches(proc_info, path, name):
    exe, argv0 = proc_info["exe"] or "", proc_info["argv"][0]
    if path:
        return exe in (path, os.path.realpath(path)) or argv0 == path
    return bool(name) and (os.path.basename(argv0) == name or os.path.basename(exe) == name)


def cri_handler(ctr_run, namespace, sandbox_id):
    """The RuntimeHandler containerd's CRI plugin recorded for a sandbox, or None when containerd does not
    know the sandbox (or cannot be asked). ``ctr_run(args) -> (rc, stdout)``."""
    if ctr_run is None:
        return None
    try:
        rc, out = ctr_run(["-n", namespace or "k8s.io", "containers", "info", sandbox_id])
    except OSError:
        return None
    if rc != 0:
        return None
    try:
        info = json.loads(out)
        ext = (info.get("Extensions") or info.get("extensions") or {}).get(CRI_SANDBOX_EXTENSION) or {}
        value = ext.get("value", ext.get("Value"))
        meta = json.loads(base64.b64decode(value)) if isinstance(value, str) else value
        handler = (meta.get("Metadata") or meta).get("RuntimeHandler")
    except (ValueError, TypeError, AttributeError):
        return None
    return handler if isinstance(handler, str) else None


def ctr_runner(ctr_bin="ctr", address="/run/containerd/containerd.sock", timeout=20):
    def run(args):
        proc = subprocess.run([ctr_bin, "--address", address] + list(args), capture_output=True, text=True,
                              timeout=timeout, check=False)
        return proc.returncode, proc.stdout
    return run


def running(handlers, proc="/proc", ctr_run=None):
    """Every running sandbox whose shim is one of ``handlers``' binaries.

    ``handlers``: {name: {runtime_type, runtime_path}}, all handlers of the config (not only the ones to be
    removed), so that a shared binary is seen as shared. Returns [{sandbox, namespace, pid, handlers, source}]."""
    binaries = {name: shim_binary(h) for name, h in handlers.items()}
    found = []
    for p in shim_processes(proc):
        by_binary = sorted(n for n, (path, base) in binaries.items() if _matches(p, path, base))
        if not by_binary:
            continue
        recorded = cri_handler(ctr_run, p["namespace"], p["id"])
        if recorded:
            names, source = [recorded], "containerd's CRI record"
        else:
            names = by_binary
            source = ("shim binary %s" % (p["exe"] or p["argv"][0])
                      + (" (shared by %s; containerd does not know this sandbox)" % ", ".join(names)
                         if len(names) > 1 else ""))
        found.append({"sandbox": p["id"], "namespace": p["namespace"], "pid": p["pid"], "handlers": names,
                      "source": source})
    return found


def blocking(sandboxes, names):
    """{handler: [sandbox, ...]} for the handlers in ``names`` that running sandboxes use."""
    out = {}
    for sb in sandboxes:
        for n in sb["handlers"]:
            if n in names:
                out.setdefault(n, []).append(sb)
    return out


def refusal(block, option="force"):
    parts = []
    for name in sorted(block):
        parts.append("%s: %s" % (name, ", ".join("%s (pid %d, %s)" % (sb["sandbox"], sb["pid"], sb["source"])
                                                 for sb in block[name])))
    return ("refusing to remove runtime handler(s) while their sandboxes run on this node: %s. Drain the node "
            "(kubectl drain) or wait for these pods to end, then run again; %s=true removes them anyway (the "
            "running pods then lose their runtime for new containers and teardown)" % ("; ".join(parts), option))
