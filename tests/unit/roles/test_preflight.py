"""The roles refuse what they cannot use, at entry, through ansible-playbook on localhost: an ill-typed variable
or a bad choice (the argument spec), and a misspelt variable that the argument spec alone would ignore (the
preflight). Every failure names the variable. Nothing here gets as far as a role's real work."""

import os
import subprocess
import sys

import yaml

from helpers import ROOT, VENV_BIN, ansible_env, parse_results

ROLES = ["kata_config", "kata_containerd", "kata_feature_gates", "kata_prereqs", "kata_runtimeclass", "kata_verify"]


def run(tmp_path, tasks=None, roles=None, group_vars=None):
    """One play on localhost (in group kata_nodes, with these group_vars) through ansible-playbook."""
    play = {"name": "Preflight test", "hosts": "kata_nodes", "gather_facts": False}
    if tasks:
        play["tasks"] = tasks
    if roles:
        play["roles"] = roles
    pb = tmp_path / "play.yml"
    pb.write_text(yaml.safe_dump([play], sort_keys=False))
    inventory = tmp_path / "inventory" / "hosts.yml"
    inventory.parent.mkdir()
    # kata_config's dependency kata_prereqs runs for real: on this machine only its library checks, and under a
    # temporary root, so that it never loads modules or writes /etc/modules-load.d here
    (tmp_path / "node-root").mkdir()
    inventory.write_text(yaml.safe_dump({"all": {"children": {"kata_nodes": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "kata_prereqs_host_checks": False, "kata_prereqs_root": str(tmp_path / "node-root")}}}}}}))
    if group_vars:
        (inventory.parent / "group_vars").mkdir()
        (inventory.parent / "group_vars" / "kata_nodes.yml").write_text(yaml.safe_dump(group_vars))
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inventory), str(pb)],
                          cwd=ROOT, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    return proc.returncode, parse_results(proc)[0]


def rescued(name, role, tasks_from=None, include_vars=None):
    """include_role in a block whose rescue lets the play go on (the failure stays in the results)."""
    include = {"name": "katafleet.kata." + role}
    if tasks_from:
        include["tasks_from"] = tasks_from
    task = {"name": "Include " + role, "ansible.builtin.include_role": include}
    if include_vars:
        task["vars"] = include_vars
    return {"name": name, "block": [task],
            "rescue": [{"name": "Rescued " + role, "ansible.builtin.debug": {"msg": "rescued"}}]}


def role_of(result):
    """'katafleet.kata.kata_config : Preflight | ...' -> 'kata_config' (None for a task outside roles)."""
    return result["_task"].split(" : ")[0].rsplit(".", 1)[-1] if " : " in result["_task"] else None


def task_of(result):
    return result["_task"].split(" : ", 1)[-1]


def failures(results):
    return [r for r in results if r.get("failed")]


def test_misspelt_variable_in_group_vars_fails_naming_it(tmp_path):
    """The issue's case: kata_config_defualt_memory in group_vars, a rollout play with the kata_config role."""
    rc, res = run(tmp_path, roles=[{"role": "katafleet.kata.kata_config"}], group_vars={"kata_config_defualt_memory": 4096, "kata_config_default_vcpus": 2})
    assert rc != 0
    failed = failures(res)
    assert len(failed) == 1 and role_of(failed[0]) == "kata_config"
    assert task_of(failed[0]) == "Preflight | every kata_config_* variable is one the role knows"
    assert "kata_config_defualt_memory (did you mean kata_config_default_memory?)" in failed[0]["msg"]
    assert "kata_config_default_vcpus" not in failed[0]["msg"]
    # nothing of kata_config ran; its dependency kata_prereqs did (read-only probes) and passed its own preflight
    ran = [task_of(r).split(" - ")[0] for r in res if role_of(r) == "kata_config"]
    assert ran == ["Validating arguments against arg spec 'main'",
                   "Preflight | every kata_config_* variable is one the role knows"]


def test_every_role_names_its_misspelt_variables_and_only_its_own(tmp_path):
    """Each role's preflight, with every role's defaults loaded: clean first, then one misspelt name per role
    (all given at once as include vars: each role reports the one with its prefix and no other)."""
    misspelt = {"kata_config": "kata_config_defualt_memory", "kata_containerd": "kata_containerd_handler",
                "kata_feature_gates": "kata_feature_gates_want", "kata_prereqs": "kata_prereqs_tomlkit_instal",
                "kata_runtimeclass": "kata_runtimeclass_kubernetes_versoin",
                "kata_verify": "kata_verify_min_sandboxs"}
    closest = {"kata_config": "kata_config_default_memory", "kata_containerd": "kata_containerd_handlers",
               "kata_feature_gates": "kata_feature_gates_wanted", "kata_prereqs": "kata_prereqs_tomlkit_install",
               "kata_runtimeclass": "kata_runtimeclass_kubernetes_version",
               "kata_verify": "kata_verify_min_sandboxes"}
    clean = [{"name": "Clean " + r, "ansible.builtin.include_role": {"name": "katafleet.kata." + r,
                                                                     "tasks_from": "preflight"}} for r in ROLES]
    wrong = [rescued("Misspelt " + r, r, "preflight", {v: 1 for v in misspelt.values()}) for r in ROLES]
    rc, res = run(tmp_path, tasks=clean + wrong)
    assert rc == 0, failures(res)
    preflights = [r for r in res if task_of(r).startswith("Preflight | ")]
    # (kata_config, kata_containerd and kata_feature_gates bring their dependency kata_prereqs along)
    assert {role_of(r) for r in preflights if not r.get("failed")} == set(ROLES)
    failed = [r for r in preflights if r.get("failed")]
    assert [role_of(r) for r in failed] == ROLES
    for role, r in zip(ROLES, failed):
        assert "role katafleet.kata.%s: unknown variable(s) %s (did you mean %s?);" % (
            role, misspelt[role], closest[role]) in r["msg"]
        assert [v for v in misspelt.values() if v in r["msg"]] == [misspelt[role]]


def test_ill_typed_variable_or_bad_choice_fails_at_role_entry_naming_it(tmp_path):
    """The argument spec at the real entry point of every role; the role's own tasks never start."""
    bad = {
        "kata_config": ("kata_config_default_memory", "lots",
                        "argument 'kata_config_default_memory' is of type str and we were unable to convert to int"),
        "kata_containerd": ("kata_containerd_state", "gone",
                            "value of kata_containerd_state must be one of: present, absent, got: gone"),
        "kata_feature_gates": ("kata_feature_gates_wanted", "PodOverhead",
                               "argument 'kata_feature_gates_wanted' is of type str and we were unable to convert "
                               "to dict"),
        "kata_prereqs": ("kata_prereqs_tomlkit_install", "pip",
                         "value of kata_prereqs_tomlkit_install must be one of: package, controller, none, got: pip"),
        "kata_runtimeclass": ("kata_runtimeclass_apply", "maybe",
                              "argument 'kata_runtimeclass_apply' is of type str and we were unable to convert "
                              "to bool"),
        "kata_verify": ("kata_verify_min_sandboxes", "many",
                        "argument 'kata_verify_min_sandboxes' is of type str and we were unable to convert to int"),
    }
    tasks = [rescued("Ill-typed " + r, r, include_vars={v[0]: v[1]}) for r, v in bad.items()]
    # an entry point other than main: kata_verify's record (site.yml's node plays)
    tasks.append(rescued("Bad record part", "kata_verify", "record", {"kata_verify_record_part": "nod",
                                                                      "kata_verify_record_dir": str(tmp_path)}))
    rc, res = run(tmp_path, tasks=tasks)
    assert rc == 0, failures(res)
    failed = failures(res)
    record = failed.pop()
    assert task_of(record).startswith("Validating arguments against arg spec 'record'")
    assert "value of kata_verify_record_part must be one of: node, feature_gates, got: nod" in record["msg"]
    assert [role_of(r) for r in failed] == list(bad)
    for (role, (var, _value, message)), r in zip(bad.items(), failed):
        assert task_of(r).startswith("Validating arguments against arg spec 'main'"), r["_task"]
        assert message in r["msg"], (role, r["msg"])
    # no role got past its entry: only kata_config's dependency kata_prereqs ran (read-only probes)
    started = {role_of(r) for r in res if role_of(r) and not task_of(r).startswith("Validating arguments")}
    assert started <= {"kata_prereqs"}


def test_entry_checks_ride_no_round_trip_to_the_node(tmp_path):
    """Argument spec and preflight run on the controller: on a node whose SSH port refuses connections (loopback,
    port 1) both pass, and only the role's first real task finds the node unreachable."""
    pb = tmp_path / "play.yml"
    pb.write_text(yaml.safe_dump([{"name": "Unreachable node", "hosts": "all", "gather_facts": False,
                                   "roles": [{"role": "katafleet.kata.kata_verify"}]}]))
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "node-without-ssh,", str(pb),
                           "-e", "ansible_host=127.0.0.1", "-e", "ansible_port=1", "-e", "ansible_connection=ssh"],
                          cwd=ROOT, env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    res = parse_results(proc)[0]
    assert [(task_of(r).split(" - ")[0], bool(r.get("unreachable"))) for r in res] == [
        ("Validating arguments against arg spec 'main'", False),
        ("Preflight | every kata_verify_* variable is one the role knows", False),
        ("Verify cgroup placement of every Kata sandbox", True)]
