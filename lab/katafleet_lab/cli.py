"""python -m katafleet_lab {up,down,status,ssh,demo}"""

import argparse
import sys

from .lab import Lab


def parse_nodes(spec):
    """"v1,v1,v2" -> [("node1","v1"), ("node2","v1"), ("node3","v2")]"""
    modes = [m.strip() for m in spec.split(",") if m.strip()]
    for m in modes:
        if m not in ("v1", "v2"):
            raise argparse.ArgumentTypeError("node cgroup modes are v1 or v2, got %r" % m)
    return [("node%d" % i, m) for i, m in enumerate(modes, start=1)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="katafleet_lab", description=__doc__)
    ap.add_argument("--name", default="demo", help="lab name (labs of different names never collide)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="bring up the lab nodes (cleans up a previous run first)")
    p_up.add_argument("--nodes", type=parse_nodes, default=parse_nodes("v1,v1,v2"),
                      help="cgroup mode per node, e.g. v1,v1,v2 (default)")
    sub.add_parser("down", help="tear the lab down, leaving nothing behind")
    sub.add_parser("status", help="show the lab's nodes")
    p_ssh = sub.add_parser("ssh", help="run a command on a node")
    p_ssh.add_argument("node")
    p_ssh.add_argument("command", nargs="+")
    p_demo = sub.add_parser("demo", help="rollout + verification against a fresh lab, with a summary")
    p_demo.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    p_demo.add_argument("--nodes", type=parse_nodes, default=parse_nodes("v1,v1,v2"))
    args = ap.parse_args(argv)
    lab = Lab(args.name)
    if args.cmd == "up":
        state = lab.up(args.nodes)
        for n in state["nodes"]:
            print("%-6s %-14s cgroup %s" % (n["name"], n["ip"], n["cgroup"]))
        print("inventory: %s" % lab.inventory)
        return 0
    if args.cmd == "down":
        lab.down()
        print("lab %s is down" % args.name)
        return 0
    if args.cmd == "status":
        state = lab.load_state()
        if not state:
            print("lab %s is not up" % args.name)
            return 1
        for n in state["nodes"]:
            print("%-6s %-14s cgroup %s pid %s" % (n["name"], n["ip"], n["cgroup"], n.get("pid")))
        print("inventory: %s" % lab.inventory)
        return 0
    if args.cmd == "ssh":
        res = lab.ssh(args.node, " ".join(args.command), check=False)
        sys.stdout.write(res.stdout)
        sys.stderr.write(res.stderr)
        return res.returncode
    if args.cmd == "demo":
        from .demo import run_demo
        return run_demo(lab, args.nodes, keep=args.keep)
    return 2
