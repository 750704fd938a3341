"""The main job against the built-in lab: rollout, idempotence, drift correction, sandboxes, verification.

Prints each ansible-playbook run as it goes and a summary at the end; exits non-zero when any step
did not do what it should.
"""

import glob
import json
import os
import re
import subprocess
import sys
import time

from .lab import ROOT, Lab

DEMO_VARS = os.path.join(ROOT, "inventories", "lab", "demo-vars.yml")
REPORTS = os.path.join(ROOT, ".ansible", "reports")


def ansible_env(lab):
    env = dict(os.environ)
    venv_bin = os.path.dirname(sys.executable)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=os.path.join(lab.dir, "ansible-tmp"),
               ANSIBLE_HOME=os.path.join(lab.dir, "ansible-home"), ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(lab.dir, "cp"),
               PATH=venv_bin + os.pathsep + env.get("PATH", ""), PWD=ROOT)  # reports go under ROOT/.ansible
    return env


def playbook(lab, name, *args, echo=True):
    """Run a playbook against the lab; returns (rc, {host: changed count}, output)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", lab.inventory,
           os.path.join(ROOT, "playbooks", name), "-e", "@" + DEMO_VARS] + list(args)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ansible_env(lab), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out = []
    for line in proc.stdout:
        out.append(line)
        if echo:
            sys.stdout.write(line)
    proc.wait()
    text = "".join(out)
    changed = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", text, re.M)}
    return proc.returncode, changed, text


def banner(text):
    print("\n" + "=" * 78 + "\n== " + text + "\n" + "=" * 78, flush=True)


def node_facts(lab, node):
    script = (
        "import json, subprocess, tomllib\n"
        "c = tomllib.load(open('/etc/kata-containers/configuration.toml', 'rb'))\n"
        "(hv, h), = c['hypervisor'].items()\n"
        "d = tomllib.loads(subprocess.run(['containerd', '--config', '/etc/containerd/config.toml', 'config', 'dump'],"
        " capture_output=True, text=True).stdout)\n"
        "rt = d['plugins']['io.containerd.grpc.v1.cri']['containerd']['runtimes']\n"
        "print(json.dumps({'hv': hv, 'vcpus': h.get('default_vcpus'), 'mem': h.get('default_memory'),"
        " 'only': c['runtime'].get('sandbox_cgroup_only'), 'handlers': sorted(k for k in rt if k.startswith('kata'))}))\n"
    )
    res = lab.ssh(node, "python3 -c \"%s\"" % script.replace('"', '\\"'), check=False)
    try:
        return json.loads(res.stdout)
    except ValueError:
        return {}


def run_demo(lab, nodes, keep=False):
    steps = []

    def step(name, ok, detail=""):
        steps.append((name, ok, detail))
        print("\n>>> %s: %s %s" % ("OK  " if ok else "FAIL", name, detail), flush=True)

    t0 = time.time()
    try:
        banner("1/6 lab: bringing up %d nodes (%s)" % (len(nodes), ", ".join("%s cgroup %s" % n for n in nodes)))
        state = lab.up(nodes)
        step("lab up", True, "%d nodes in %.1fs" % (len(state["nodes"]), time.time() - t0))

        banner("2/6 rollout: playbooks/site.yml")
        rc, changed, _ = playbook(lab, "site.yml")
        step("rollout", rc == 0, "changed per node: %s" % changed)

        banner("3/6 idempotence: site.yml again must change nothing")
        rc, changed2, _ = playbook(lab, "site.yml")
        step("idempotent second run", rc == 0 and not any(changed2.values()), "changed per node: %s" % changed2)

        banner("4/6 drift: someone sets sandbox_cgroup_only=false on node2 by hand")
        drift_node = state["nodes"][1]["name"] if len(state["nodes"]) > 1 else state["nodes"][0]["name"]
        lab.ssh(drift_node, "sed -i 's/^sandbox_cgroup_only = true/sandbox_cgroup_only = false/' "
                            "/etc/kata-containers/configuration.toml")
        rc, drift, _ = playbook(lab, "drift.yml", "--diff")
        others = [n for n in drift if n != drift_node]
        step("drift report (check mode)", rc == 0 and drift.get(drift_node, 0) > 0 and not any(drift[n] for n in others),
             "drifted: %s" % [n for n, c in drift.items() if c])
        rc, fixed, _ = playbook(lab, "site.yml", "--limit", drift_node, echo=False)
        rc2, again, _ = playbook(lab, "site.yml", echo=False)
        step("drift corrected", rc == 0 and fixed.get(drift_node, 0) > 0 and rc2 == 0 and not any(again.values()),
             "site.yml fixed %s, then all nodes unchanged" % drift_node)

        banner("5/6 sandboxes: 2 Kata-like sandboxes per node (shim + virtiofsd + qemu with 2 vCPUs)")
        for k, n in enumerate(state["nodes"], start=1):
            for i, qos in enumerate(("burstable", "guaranteed")):
                sb = "demo%s%d" % (n["name"], i)
                uid = "%08d-0000-4000-8000-%012d" % (k, i)
                res = lab.ssh(n["name"], "katalab-sandbox up %s %s --qos %s" % (sb, uid, qos), check=False)
                if res.returncode != 0:
                    step("sandbox %s on %s" % (sb, n["name"]), False, res.stderr.strip())
        step("sandboxes started", all(ok for _n, ok, _d in steps), "%d" % (2 * len(state["nodes"])))

        banner("6/6 verification: playbooks/verify.yml (kata_verify + testinfra)")
        for f in glob.glob(os.path.join(REPORTS, "*.placement.json")):
            os.unlink(f)
        rc, _c, out = playbook(lab, "verify.yml", "-e", "kata_verify_min_sandboxes=2")
        m = re.search(r"(\d+ passed[^\n\"']*)", out)
        step("verification", rc == 0, m.group(1) if m else "")

        summary(lab, state, steps, time.time() - t0)
        return 0 if all(ok for _n, ok, _d in steps) else 1
    finally:
        if not keep:
            lab.down()
            print("lab %s torn down" % lab.name)
        else:
            print("lab left up: inventory %s; `python -m katafleet_lab down` removes it" % lab.inventory)


def summary(lab, state, steps, seconds):
    banner("katafleet demo summary (lab %s, %.0fs)" % (lab.name, seconds))
    head = ("NODE", "CGROUP", "KATA VM DEFAULTS", "SANDBOX_CGROUP_ONLY", "CONTAINERD HANDLERS", "SANDBOXES",
            "THREADS", "PLACEMENT")
    rows = [head]
    for n in state["nodes"]:
        facts = node_facts(lab, n["name"])
        try:
            rep = json.load(open(os.path.join(REPORTS, "%s.placement.json" % n["name"])))
            s = rep["summary"]
            placement = "ok" if not rep["problems"] else "%d MISPLACED" % len(rep["problems"])
            sbs, threads = str(s["sandboxes"]), str(s["threads_checked"])
        except (OSError, ValueError, KeyError):
            placement, sbs, threads = "no report", "-", "-"
        rows.append((n["name"], n["cgroup"], "%s vCPU / %s MiB (%s)" % (facts.get("vcpus"), facts.get("mem"), facts.get("hv")),
                     str(facts.get("only")).lower(), ",".join(facts.get("handlers", [])) or "-", sbs, threads, placement))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    rc_file = os.path.join(ROOT, ".ansible", "runtimeclasses", "runtimeclasses.yaml")
    if os.path.exists(rc_file):
        import yaml
        for o in yaml.safe_load_all(open(rc_file)):
            if o:
                print("RuntimeClass %s: %s, handler %s, overhead %s/%s, nodeSelector %s (validated, not applied: no API "
                      "server in the lab)" % (o["metadata"]["name"], o["apiVersion"], o["handler"],
                                              o["overhead"]["podFixed"]["memory"], o["overhead"]["podFixed"]["cpu"],
                                              o.get("scheduling", {}).get("nodeSelector")))
    print()
    for name, ok, detail in steps:
        print("%-4s %-28s %s" % ("ok" if ok else "FAIL", name, detail))
    print("\nRESULT: %s" % ("all steps passed" if all(ok for _n, ok, _d in steps) else "FAILED"))
