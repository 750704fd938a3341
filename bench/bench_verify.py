#!/usr/bin/env python3
"""Verification time against the number of sandboxes on a node.

Builds /proc-like trees for N Kata sandboxes (shim, 2 virtiofsd processes with 3 threads, a qemu with
5 threads of which 2 are vCPUs: 9 threads per sandbox, all correctly placed) and times
katafleet.cgroups.verify over them. It measures the verifier's own work (scan, per-thread reads, path
rules); reading the real /proc costs about the same per file.

    .venv/bin/python bench/bench_verify.py [--sizes 10,50,200,1000]
Prints figures; asserts nothing.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))
from katafleet import cgroups  # noqa: E402

V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]


def cg_text(path):
    return "".join("%d:%s:%s\n" % (i + 2, c, path) for i, c in enumerate(V1)) + "1:name=systemd:/\n0::/\n"


def write_proc(root, pid, ppid, comm, argv, exe, threads):
    d = os.path.join(root, str(pid))
    os.makedirs(os.path.join(d, "task"))
    open(os.path.join(d, "comm"), "w").write(comm + "\n")
    open(os.path.join(d, "stat"), "w").write("%d (%s) S %d 0 0\n" % (pid, comm, ppid))
    open(os.path.join(d, "cmdline"), "wb").write(b"\0".join(a.encode() for a in argv) + b"\0")
    os.symlink(exe, os.path.join(d, "exe"))
    for tid, tcomm, path in threads:
        t = os.path.join(d, "task", str(tid))
        os.makedirs(t)
        open(os.path.join(t, "comm"), "w").write(tcomm + "\n")
        open(os.path.join(t, "cgroup"), "w").write(cg_text(path))


def build(root, n):
    pid = 1000
    for i in range(n):
        sb = "%064x" % i
        pod = "/kubepods/burstable/pod%08d-0000-4000-8000-000000000000/kata_%s" % (i, sb)
        shim, vfs1, vfs2, qemu = pid, pid + 1, pid + 3, pid + 6
        write_proc(root, shim, 1, "containerd-shim", ["/opt/kata/bin/containerd-shim-kata-v2", "-id", sb],
                   "/opt/kata/bin/containerd-shim-kata-v2", [(shim, "containerd-shim", pod)])
        write_proc(root, vfs1, shim, "virtiofsd", ["/opt/kata/libexec/virtiofsd"], "/opt/kata/libexec/virtiofsd",
                   [(vfs1, "virtiofsd", pod)])
        write_proc(root, vfs2, vfs1, "virtiofsd", ["/opt/kata/libexec/virtiofsd"], "/opt/kata/libexec/virtiofsd",
                   [(vfs2, "virtiofsd", pod), (vfs2 + 1, "virtiofsd", pod)])
        write_proc(root, qemu, shim, "qemu-system-x86", ["/opt/kata/bin/qemu-system-x86_64", "-name", "sandbox-" + sb],
                   "/opt/kata/bin/qemu-system-x86_64",
                   [(qemu, "qemu-system-x86", pod), (qemu + 1, "call_rcu", pod), (qemu + 2, "IO mon_iothread", pod),
                    (qemu + 3, "CPU 0/KVM", pod), (qemu + 4, "CPU 1/KVM", pod)])
        pid += 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,200,1000")
    args = ap.parse_args()
    print("%10s %10s %12s %14s %12s" % ("sandboxes", "threads", "verify (ms)", "per sandbox", "peak MiB"))
    for n in [int(x) for x in args.sizes.split(",")]:
        root = tempfile.mkdtemp(prefix="kf-bench-proc-")
        try:
            build(root, n)
            best = None
            for _ in range(3):
                t = time.perf_counter()
                rep = cgroups.verify(True, 1, proc_root=root, use_qmp=False)
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            tracemalloc.start()
            cgroups.verify(True, 1, proc_root=root, use_qmp=False)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert rep["summary"]["sandboxes"] == n and rep["ok"], rep["problems"][:3]
            print("%10d %10d %12.1f %12.2f ms %12.1f" % (n, rep["summary"]["threads_checked"], best * 1000,
                                                         best * 1000 / n, peak / 1048576))
        finally:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
