"""`katafleet explain`: the sizing explainer on the command line (logic in sizing.py).

Exit status: 0 when every pod was explained (warnings included), 2 on bad input (the message names file, object,
container and field).
"""

import argparse
import json
import sys

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kube, sizing
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


def build_parser():
    p = argparse.ArgumentParser(prog="katafleet explain",
                                description="What Kata pods really get: VM size, requests, limits, pod cgroup, QoS.")
    p.add_argument("--kata-config", metavar="FILE", help="Kata configuration.toml (its config.d drop-ins apply)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="sets",
                   help="a Kata key (default_vcpus=5, runtime.static_sandbox_resource_mgmt=true) or "
                        "containerd.pod_annotations / containerd.privileged_without_host_devices; repeatable")
    p.add_argument("--runtimeclass", metavar="FILE", help="RuntimeClass YAML whose overhead.podFixed applies")
    p.add_argument("--handler", metavar="NAME", help="handler: picks the RuntimeClass in FILE, or the project's "
                                                     "default overhead for it")
    p.add_argument("--host-cpus", type=int, metavar="N", help="host CPUs (default: this machine's)")
    p.add_argument("--host-memory", metavar="QUANTITY", help="host memory, e.g. 64Gi (default: this machine's)")
    p.add_argument("--json", action="store_true", help='print one JSON object {"pods": [...]}')
    p.add_argument("workloads", nargs="+", metavar="WORKLOAD.yaml")
    return p


def run(argv):
    args = build_parser().parse_args(argv)
    host_mib = None
    if args.host_memory is not None:
        host_mib = kube.integer(kube.parse_resource(args.host_memory, {"key": "--host-memory"})) // kube.MIB
    if args.host_cpus is not None and args.host_cpus < 1:
        raise KatafleetError("must be at least 1", key="--host-cpus", value=args.host_cpus, rule="host CPUs")
    values = sizing.kata_values(args.kata_config, sizing.parse_sets(args.sets), args.host_cpus, host_mib)
    rc_objects = sizing.load_documents(args.runtimeclass) if args.runtimeclass else None
    handler, overhead = sizing.overhead_from(rc_objects, args.handler, args.runtimeclass)
    report = sizing.explain(sizing.load_pods(args.workloads), values, overhead, handler)
    return report, args.json


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] != "explain":
        sys.stderr.write("usage: katafleet explain [--kata-config FILE] [--set KEY=VALUE ...] [--runtimeclass FILE] "
                         "[--handler NAME] [--host-cpus N] [--host-memory QUANTITY] [--json] WORKLOAD.yaml...\n")
        return 2
    argv = argv[1:]
    try:
        report, as_json = run(argv)
    except KatafleetError as exc:
        sys.stderr.write("katafleet explain: %s\n" % exc)
        return 2
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(sizing.table(report))
    return 0
