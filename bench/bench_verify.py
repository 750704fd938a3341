#!/usr/bin/env python
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
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import cgroups
from katafleet_lab import proctree


def build(root, n):
    for i in range(n):
        sb = "%064x" % i
        pod = "/kubepods/burstable/pod%08d-0000-4000-8000-000000000000/kata_%s" % (i, sb)
        proctree.write_sandbox(root, 1000 + 20 * i, sb, {"shim": pod, "virtiofsd": pod, "vmm": pod, "vcpu": pod})


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
            for dummy in range(3):
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
