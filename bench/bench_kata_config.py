#!/usr/bin/env python
"""Time of one kata_config edit of the largest Kata fixture: the logic alone, and the module through Ansible.

    .venv/bin/python bench/bench_kata_config.py [--runs N]
Prints figures; asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kata_config

FIXTURES = os.path.join(ROOT, "tests", "data", "fixtures", "kata")
OPTIONS = {"default_vcpus": 2, "default_memory": 4096, "sandbox_cgroup_only": True, "enable_debug": True,
           "debug_console_enabled": False}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    rendered = [os.path.join(FIXTURES, n) for n in os.listdir(FIXTURES) if "rendered" in n]
    largest = max(rendered, key=os.path.getsize)
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "configuration.toml")
    times = []
    for dummy in range(args.runs):
        shutil.copyfile(largest, path)
        t = time.perf_counter()
        kata_config.apply(kata_config.plan(path, options=OPTIONS))
        times.append(time.perf_counter() - t)
    shutil.copyfile(largest, path)
    tracemalloc.start()
    kata_config.apply(kata_config.plan(path, options=OPTIONS))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    idem = []
    for dummy in range(args.runs):
        t = time.perf_counter()
        kata_config.plan(path, options=OPTIONS)
        idem.append(time.perf_counter() - t)
    print("fixture: %s (%d lines, %d bytes)" % (os.path.basename(largest), open(largest).read().count("\n"),
                                                os.path.getsize(largest)))
    print("logic, one edit (plan + atomic write), %d runs: median %.1f ms, min %.1f ms, max %.1f ms"
          % (args.runs, 1000 * statistics.median(times), 1000 * min(times), 1000 * max(times)))
    print("logic, second run (no change), median %.1f ms" % (1000 * statistics.median(idem)))
    print("logic, peak Python memory of one edit: %.1f MiB" % (peak / 1048576))
    # through ansible: one ad-hoc call on localhost (includes ansible's own start-up)
    venv_bin = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=os.path.join(tmp, "at"))
    runs = []
    for dummy in range(3):
        shutil.copyfile(largest, path)
        t = time.perf_counter()
        subprocess.run([os.path.join(venv_bin, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
                        "-e", "ansible_python_interpreter=" + sys.executable, "-m", "katafleet.kata.kata_config", "-a",
                        "path=%s default_memory=4096 sandbox_cgroup_only=true" % path],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    print("through `ansible -m katafleet.kata.kata_config` on localhost, 3 runs: median %.2f s (mostly ansible start-up)"
          % statistics.median(runs))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
