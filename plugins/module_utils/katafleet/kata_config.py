"""Plan and apply changes to one Kata configuration.toml (or a config.d drop-in beside it).

``plan()`` reads, validates and computes the new text without writing anything; ``apply()``
writes it atomically. All bad input is collected and raised as one KatafleetError before any
write, so a refused run leaves every file byte for byte as it was.
"""

import os

try:
    import tomllib  # Python >= 3.11
except ImportError:  # pragma: no cover - older managed nodes
    tomllib = None

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio, kata_rules, tomledit
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError, raise_all
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.kata_keys import HYPERVISOR_NAMES

DEFAULT_PATH = "/etc/kata-containers/configuration.toml"

# Named module options -> where they live. "hypervisor" means the file's [hypervisor.<name>] table.
NAMED_OPTIONS = {
    "default_vcpus": ["hypervisor"],
    "default_maxvcpus": ["hypervisor"],
    "default_memory": ["hypervisor"],
    "default_maxmemory": ["hypervisor"],
    "memory_slots": ["hypervisor"],
    "enable_virtio_mem": ["hypervisor"],
    "static_sandbox_resource_mgmt": ["runtime"],
    "sandbox_cgroup_only": ["runtime"],
    "enable_debug": ["runtime", "hypervisor", "agent.kata"],
    "debug_console_enabled": ["agent.kata"],
}

DROPIN_HEADER = "# Managed by katafleet (kata_config module); local edits are overwritten.\n"


class Plan(object):
    """What a run would do: texts before/after, the per-key changes, warnings, effective values."""

    def __init__(self, target, before, after, changes, warnings, effective, hypervisor):
        self.target = target
        self.before = before
        self.after = after
        self.changes = changes
        self.warnings = warnings
        self.effective = effective
        self.hypervisor = hypervisor

    @property
    def changed(self):
        return self.before != self.after


def _loads(text, path):
    """Plain data of a TOML text; on a syntax error tomlkit's message names the line and column."""
    if tomllib is not None:
        try:
            return tomllib.loads(text)
        except ValueError:
            pass
    return tomledit.parse(text, path).unwrap()


def find_hypervisor(data, path, wanted=None):
    """The name of the file's single [hypervisor.<name>] table."""
    names = sorted((data.get("hypervisor") or {}).keys())
    if wanted:
        if wanted not in HYPERVISOR_NAMES:
            raise KatafleetError("unknown hypervisor; Kata knows %s" % ", ".join(HYPERVISOR_NAMES),
                                 path=path, key="hypervisor", value=wanted, rule="hypervisor name")
        if names and wanted not in names:
            raise KatafleetError("the file configures [hypervisor.%s], not [hypervisor.%s]" % (names[0], wanted),
                                 path=path, key="hypervisor", value=wanted, rule="hypervisor table")
        return wanted
    if len(names) != 1:
        raise KatafleetError(
            "expected exactly one [hypervisor.<name>] table, found %s; pass hypervisor=" % (names or "none"),
            path=path, key="hypervisor", rule="hypervisor table")
    return names[0]


def _table(name, hypervisor):
    if name == "hypervisor":
        return ("hypervisor", hypervisor)
    return tomledit.split_dotted(name)


def _deep_merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dropin_dir(path):
    return os.path.join(os.path.dirname(os.path.abspath(path)), "config.d")


def merged_view(main_text, path, dropin_texts):
    """The configuration Kata sees: main file, then config.d/*.toml in alphabetical order."""
    data = _loads(main_text, path)
    for name in sorted(dropin_texts):
        data = _deep_merge(data, _loads(dropin_texts[name], os.path.join(dropin_dir(path), name)))
    return data


# where the shim looks when containerd passes no ConfigPath (KC src/runtime/pkg/katautils/config-settings.go.in)
LOOKUP_ORDER = [
    "/etc/kata-containers/configuration.toml",
    "/opt/kata/share/defaults/kata-containers/configuration.toml",
    "/usr/share/defaults/kata-containers/configuration.toml",
]


def load_effective(paths=None):
    """(path, merged config) of the first existing file in ``paths`` (default: Kata's lookup order),
    with its config.d drop-ins applied; (None, {}) when there is none."""
    for path in paths or LOOKUP_ORDER:
        text = fileio.read_text(path)
        if text is not None:
            return path, merged_view(text, path, _read_dropins(path))
    return None, {}


def _read_dropins(path):
    out = {}
    ddir = dropin_dir(path)
    if os.path.isdir(ddir):
        for name in sorted(os.listdir(ddir)):
            if name.endswith(".toml") and os.path.isfile(os.path.join(ddir, name)):
                out[name] = fileio.read_text(os.path.join(ddir, name))
    return out


def _lookup(data, table, key):
    node = data
    for part in table:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node.get(key) if isinstance(node, dict) else None


def render_dropin(sets):
    """A drop-in holding exactly ``sets`` (deterministic, so a second run changes nothing)."""
    text = DROPIN_HEADER
    by_table = {}
    for table, key, value in sets:
        by_table.setdefault(tuple(table), {})[key] = value
    for table in sorted(by_table):
        text = tomledit.append_table(text, table, by_table[table])
    return text


def plan(path=DEFAULT_PATH, options=None, settings=None, remove=None, annotations=None,
         annotations_mode="replace", source=None, hypervisor=None, dropin=None,
         host_cpus=None, host_memory_mib=None):
    """Compute the change. ``options``: named options (NAMED_OPTIONS) with None meaning "leave";
    ``settings``: {table: {key: value}} for any other key Kata knows ("hypervisor" = the file's
    hypervisor table); ``remove``: ["table.key", ...]."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    settings = settings or {}
    remove = remove or []
    errors, warnings = [], []

    main_text = fileio.read_text(path)
    base_text, creating = main_text, False
    if main_text is None:
        if dropin:
            raise KatafleetError("does not exist; a drop-in goes beside the main file Kata loads",
                                 path=path, rule="drop-in needs its main file")
        if not source:
            raise KatafleetError("does not exist and no source was given to create it from", path=path,
                                 rule="path or source must exist")
        base_text = fileio.read_text(source)
        if base_text is None:
            raise KatafleetError("source file does not exist", path=source, rule="source must exist")
        creating = True
    base = _loads(base_text, source if creating else path)
    hv = find_hypervisor(base, path, hypervisor)
    hv_table = ("hypervisor", hv)

    dropins = _read_dropins(path) if dropin else {}
    current = merged_view(base_text, path, dropins) if dropin else base

    sets = []
    for name, value in options.items():
        if name not in NAMED_OPTIONS:
            raise KatafleetError("not a kata_config option", key=name, rule="option name")
        if name == "default_vcpus" and isinstance(value, str):
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                pass
        for table in NAMED_OPTIONS[name]:
            sets.append((_table(table, hv), name, value))
    for table_name, items in settings.items():
        if not isinstance(items, dict):
            errors.append(KatafleetError("settings must map a table name to {key: value}", key=table_name,
                                         value=items, rule="settings format"))
            continue
        for key, value in items.items():
            sets.append((_table(table_name, hv), key, value))
    if annotations is not None:
        if annotations_mode == "add":
            have = list(_lookup(current, hv_table, "enable_annotations") or [])
            value = have + [a for a in annotations if a not in have]
        else:
            value = list(annotations)
        sets.append((hv_table, "enable_annotations", value))

    seen = {}
    for table, key, value in sets:
        errors.extend(kata_rules.check_key(path, table, key, value, hv))
        if (table, key) in seen and seen[(table, key)] != value:
            errors.append(KatafleetError("set twice with different values (%r and %r)" % (seen[(table, key)], value),
                                         path=path, key="%s.%s" % (".".join(table), key), rule="one value per key"))
        seen[(table, key)] = value

    removes = []
    for item in remove:
        table_name, dummy, key = item.rpartition(".")
        if not table_name or not key:
            errors.append(KatafleetError("remove entries are 'table.key'", path=path, key=item, rule="remove format"))
            continue
        table = _table(table_name, hv)
        if (table, key) in seen:
            errors.append(KatafleetError("both set and removed", path=path, key=item, rule="one value per key"))
        removes.append((table, key))
    if removes and dropin:
        errors.append(KatafleetError("a drop-in can override keys but not remove them; edit the main file",
                                     path=path, key=", ".join(remove), rule="drop-in cannot remove"))
    raise_all(errors)

    if dropin:
        if "/" in dropin or not dropin.endswith(".toml"):
            raise KatafleetError("drop-in must be a file name ending in .toml (Kata only loads config.d/*.toml)",
                                 path=path, key="dropin", value=dropin, rule="drop-in name")
        target = os.path.join(dropin_dir(path), dropin)
        before = fileio.read_text(target)
        after = render_dropin(sets)
        dropins[dropin] = after
        final = merged_view(base_text, path, dropins)
    else:
        target = path
        before = main_text
        after = tomledit.edit(base_text, path, sets=sets, removes=removes)
        final = _loads(after, path)

    changes = []
    for table, key, value in sets:
        old = _lookup(current, table, key)
        if old is None or not tomledit.same_value(old, value):
            changes.append({"key": "%s.%s" % (".".join(table), key), "before": old, "after": value})
    for table, key in removes:
        old = _lookup(current, table, key)
        if old is not None:
            changes.append({"key": "%s.%s" % (".".join(table), key), "before": old, "after": None})

    hv_values = _lookup(final, ("hypervisor",), hv) or {}
    changed_keys = {key for table, key, dummy in sets if table == hv_table}
    rule_errors, rule_warnings = kata_rules.check_values(path, "hypervisor.%s" % hv, hv_values, changed_keys)
    raise_all(rule_errors)
    warnings.extend(rule_warnings)

    cpus, mem = kata_rules.host_facts()
    eff = kata_rules.effective(hv_values, host_cpus or cpus, host_memory_mib or mem)
    eff["sandbox_cgroup_only"] = bool(_lookup(final, ("runtime",), "sandbox_cgroup_only"))
    eff["static_sandbox_resource_mgmt"] = bool(_lookup(final, ("runtime",), "static_sandbox_resource_mgmt"))
    eff["debug_console_enabled"] = bool(_lookup(final, ("agent", "kata"), "debug_console_enabled"))
    warnings.extend(kata_rules.clamp_warnings(path, "hypervisor.%s" % hv, hv_values, eff))
    return Plan(target, before, after, changes, warnings, eff, hv)


def apply(p, backup=False, backup_dir=fileio.DEFAULT_BACKUP_DIR):
    """Write the planned text (only when it differs). Returns the backup path, if one was made."""
    if not p.changed:
        return None
    backup_path = fileio.backup(p.target, backup_dir) if backup and p.before is not None else None
    fileio.atomic_write(p.target, p.after)
    return backup_path
