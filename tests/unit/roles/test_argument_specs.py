"""Every role's meta/argument_specs.yml agrees with its defaults/main.yml (the defaults' comments are the prose
documentation, the spec is what Ansible checks at role entry): same names, same defaults, types that accept the
defaults, choices that hold them; and every variable with the role's prefix that the role itself uses is declared."""

import os
import re

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from helpers import ROOT

ROLES_DIR = os.path.join(ROOT, "roles")
ROLES = sorted(r for r in os.listdir(ROLES_DIR) if os.path.isfile(os.path.join(ROLES_DIR, r, "tasks", "main.yml")))
TYPES = {"str", "int", "float", "bool", "list", "dict", "path", "raw"}


def load(*parts):
    with open(os.path.join(*parts)) as handle:
        return yaml.safe_load(handle)


def entry_points(role):
    return load(ROLES_DIR, role, "meta", "argument_specs.yml")["argument_specs"]


def spec_options(role, entry="main"):
    return entry_points(role)[entry]["options"]


def defaults(role):
    return load(ROLES_DIR, role, "defaults", "main.yml") or {}


def test_every_role_is_covered():
    assert ROLES == ["kata_config", "kata_containerd", "kata_feature_gates", "kata_prereqs", "kata_runtimeclass",
                     "kata_verify"]
    for role in ROLES:
        assert os.path.isfile(os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")), role


@pytest.mark.parametrize("role", ROLES)
def test_same_names_and_defaults(role):
    spec, dflt = spec_options(role), defaults(role)
    assert sorted(spec) == sorted(dflt), "spec and defaults/main.yml name different variables"
    for name, value in dflt.items():
        assert "default" in spec[name], "%s: the spec gives no default (defaults/main.yml: %r)" % (name, value)
        assert spec[name]["default"] == value, name


@pytest.mark.parametrize("role", ROLES)
def test_other_entry_points_agree_with_main(role):
    """An entry point other than main (tasks_from) declares defaults/main.yml's variables exactly as main does,
    and its own parameters (which have no default there) as required."""
    main, dflt = spec_options(role), defaults(role)
    for entry, spec in entry_points(role).items():
        assert spec.get("short_description") and spec.get("description"), entry
        if entry == "main":
            continue
        assert os.path.isfile(os.path.join(ROLES_DIR, role, "tasks", entry + ".yml")), entry
        for name, opt in spec["options"].items():
            if name in dflt:
                assert opt == main[name], (entry, name)
            else:
                assert opt.get("required") is True and "default" not in opt, (entry, name)


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_documented_and_typed(role):
    for entry in entry_points(role):
        for name, opt in spec_options(role, entry).items():
            assert name.startswith(role + "_"), name
            assert opt.get("description"), name
            assert opt.get("type") in TYPES, name
            if opt["type"] == "list":
                assert opt.get("elements") in TYPES, "%s: list without elements" % name
            if "choices" in opt and "default" in opt:
                assert opt["default"] in opt["choices"], name


@pytest.mark.parametrize("role", ROLES)
def test_types_accept_the_defaults(role):
    spec = spec_options(role)
    result = ArgumentSpecValidator(spec).validate(defaults(role))
    assert result.error_messages == []


@pytest.mark.parametrize("role", ROLES)
def test_types_refuse_ill_typed_values(role):
    """One wrong value per typed option: the validator names the variable (what the role says at entry)."""
    wrong = {"int": "many", "float": "lots", "bool": "maybe", "dict": "PodOverhead"}
    spec = spec_options(role)
    for name, opt in spec.items():
        bad = wrong.get(opt["type"]) if "choices" not in opt else "not-a-choice"
        if bad is None:
            continue
        values = dict(defaults(role), **{name: bad})
        errors = ArgumentSpecValidator(spec).validate(values).error_messages
        assert len(errors) == 1 and name in errors[0], (name, errors)


def test_handlers_fields_are_the_modules():
    """kata_containerd_handlers' fields, types and defaults are the kata_containerd module's `handlers` suboptions."""
    import ansible_collections.katafleet.kata.plugins.modules.kata_containerd as mod
    module_opts = yaml.safe_load(mod.DOCUMENTATION)["options"]["handlers"]["suboptions"]
    role_opts = spec_options("kata_containerd")["kata_containerd_handlers"]["options"]
    assert sorted(role_opts) == sorted(module_opts)
    for field, opt in module_opts.items():
        for key in ("type", "elements", "default", "required", "choices"):
            assert role_opts[field].get(key) == opt.get(key), (field, key)


@pytest.mark.parametrize("role", ROLES)
def test_variables_used_by_the_role_are_declared(role):
    """A misspelt variable inside the role (kata_config_mdoe in a task) would be silently undefined or
    defaulted; every role-prefixed name the role's tasks, handlers, templates and the playbooks read is declared
    (by some entry point)."""
    known = {name for entry in entry_points(role) for name in spec_options(role, entry)}
    pattern = re.compile(r"(?<![A-Za-z0-9_])%s_[a-z0-9_]+" % re.escape(role))
    places = [os.path.join(ROLES_DIR, role, d) for d in ("tasks", "handlers", "templates", "defaults")]
    places.append(os.path.join(ROOT, "playbooks"))
    unknown = set()
    for place in places:
        for dirpath, _dirs, files in os.walk(place):
            for name in files:
                with open(os.path.join(dirpath, name)) as handle:
                    unknown.update(n for n in pattern.findall(handle.read()) if n not in known)
    # other roles whose names start with this one's (none today) would show up here: give them their own prefix
    assert not unknown


@pytest.mark.parametrize("role", ROLES)
def test_preflight_comes_first(role):
    tasks = load(ROLES_DIR, role, "tasks", "main.yml")
    first = tasks[0]
    assert first.get("ansible.builtin.import_tasks") == "preflight.yml" and "always" in first.get("tags", []), first
    preflight = load(ROLES_DIR, role, "tasks", "preflight.yml")
    text = yaml.safe_dump(preflight)
    assert "'^%s_'" % role in text and "prefix='%s_'" % role in text
