"""Shared test helpers: fixture paths, running modules through ansible-playbook itself, hashing."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "data", "fixtures")

VENV_BIN = os.path.dirname(sys.executable)


def fixture_path(*parts):
    return os.path.join(FIXTURES, *parts)


def kata_fixtures(rendered=True):
    d = fixture_path("kata")
    names = sorted(n for n in os.listdir(d) if n != "SOURCES.md")
    return [os.path.join(d, n) for n in names if ("rendered" in n) == rendered]


def ansible_env(tmpdir):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="test_json",
        ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests", "callback_plugins"),
        ANSIBLE_LOCAL_TEMP=os.path.join(str(tmpdir), ".ansible-tmp"),
        ANSIBLE_HOME=os.path.join(str(tmpdir), ".ansible-home"),
        ANSIBLE_NOCOLOR="1",
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        PWD=ROOT,  # the roles' controller-side outputs go under $PWD/.ansible, as from an operator's shell
    )
    return env


def parse_results(proc):
    """ansible-playbook's JSON (test_json callback) -> [task results with _task and _host], stats."""
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    results = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                results.append(dict(res, _task=task["task"]["name"], _host=host))
    return results, data["stats"]


def run_playbook(tmpdir, tasks, check=False, diff=False, extra_args=(), hosts="localhost", inventory=None,
                 interpreter=sys.executable):
    """Run ``tasks`` (YAML text) in a play on localhost through ansible-playbook.

    Returns (rc, [task results], stats)."""
    play = textwrap.dedent("""\
        - hosts: {hosts}
          gather_facts: false
          tasks:
        """).format(hosts=hosts) + textwrap.indent(textwrap.dedent(tasks), "    ")
    pb = os.path.join(str(tmpdir), "play.yml")
    with open(pb, "w") as handle:
        handle.write(play)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), pb]
    if inventory:
        cmd += ["-i", inventory]
    else:
        cmd += ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % interpreter]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd += list(extra_args)
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(tmpdir), capture_output=True, text=True, check=False)
    results, stats = parse_results(proc)
    return proc.returncode, results, stats


def sha(path):
    import hashlib
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


PLAYBOOKS = os.path.join(ROOT, "playbooks")


def run_pb(lab, tmpdir, playbook, *args, inventory=None):
    """ansible-playbook against a lab's inventory (or another one); JSON results: (rc, results, stats)."""
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory or lab.inventory, playbook] + list(args)
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(tmpdir), capture_output=True, text=True, check=False)
    results, stats = parse_results(proc)
    return proc.returncode, results, stats


def per_node(stats, key="changed"):
    """One stat per lab node (the RuntimeClass play's localhost is not a node)."""
    return {h: s[key] for h, s in stats.items() if h.startswith("node")}


def adhoc(lab, tmpdir, host, module, args=""):
    """One module on one lab node through `ansible -o`: (rc, result)."""
    cmd = [os.path.join(VENV_BIN, "ansible"), "-i", lab.inventory, host, "-m", module, "-a", args, "-o"]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(tmpdir), capture_output=True, text=True, check=False)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        return proc.returncode, json.loads(line.split("=>", 1)[1])
    except (IndexError, ValueError):
        raise AssertionError("unexpected ansible output:\n%s\n%s" % (proc.stdout, proc.stderr))
