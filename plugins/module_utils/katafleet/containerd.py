"""Register Kata runtime handlers in containerd's config.toml, for every config version in the field.

Layouts (data, one row per config version) come from containerd docs/PLUGINS.md ("version header"),
docs/cri/config.md, and kata-deploy's tools/packaging/kata-deploy/binary/src/runtime/containerd.rs
(plugin id per config version):
- no ``version`` (v1, containerd <= 1.2 era): ``[plugins.cri.containerd.runtimes.<name>]``
- ``version = 2`` (containerd 1.3 - 1.7): ``[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.<name>]``
- ``version = 3`` (2.0+) and ``4`` (2.3+): ``[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.<name>]``

Rules (DOMAIN.md section 6):
- a handler name is a DNS label, because RuntimeClass.handler must equal it;
- ``containerd --config FILE config dump`` fails on bad TOML and wrong types, but silently drops
  unknown keys and plugin ids the binary does not know: after it passes, the handler must really
  appear in the dump;
- containerd 1.x replaces a whole plugin section from an ``imports`` drop-in (it wiped the main
  file's CRI settings on 1.6.20), 2.x merges key by key: drop-ins only on 2.x;
- CRI refuses to start when ``default_runtime_name`` names a runtime that is not defined.
"""

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile

try:
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio, ownership, tomledit
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError, raise_all

DEFAULT_PATH = "/etc/containerd/config.toml"

# config version -> (CRI plugin path holding `containerd.default_runtime_name`, minimum containerd major)
LAYOUTS = {
    1: {"cri": ("plugins", "cri"), "min_major": 1, "max_major": 1},
    2: {"cri": ("plugins", "io.containerd.grpc.v1.cri"), "min_major": 1, "max_major": 2},
    3: {"cri": ("plugins", "io.containerd.cri.v1.runtime"), "min_major": 2, "max_major": None},
    4: {"cri": ("plugins", "io.containerd.cri.v1.runtime"), "min_major": 2, "max_major": None},
}

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# handler option -> key in the runtime table ("options.ConfigPath" lives in the options sub-table)
MANAGED_KEYS = [
    ("runtime_type", "runtime_type"),
    ("runtime_path", "runtime_path"),
    ("privileged_without_host_devices", "privileged_without_host_devices"),
    ("pod_annotations", "pod_annotations"),
    ("container_annotations", "container_annotations"),
    ("snapshotter", "snapshotter"),
]
HANDLER_DEFAULTS = {
    "runtime_type": "io.containerd.kata.v2",
    "runtime_path": None,
    "privileged_without_host_devices": True,
    "pod_annotations": ["io.katacontainers.*"],
    "container_annotations": None,
    "snapshotter": None,
    "config_path": None,
}


def config_version(data):
    version = data.get("version", 1)
    if version not in LAYOUTS:
        raise KatafleetError("unknown containerd config version; known: %s" % sorted(LAYOUTS),
                             key="version", value=version, rule="containerd config version")
    return version


def runtimes_path(version):
    return LAYOUTS[version]["cri"] + ("containerd", "runtimes")


def quote_style(text):
    """containerd 2.x writes 'single-quoted' keys and strings; 1.x "double"."""
    return "'" if re.search(r"^\s*\[plugins\.'", text, re.M) else '"'


def check_handler_name(name, path=None):
    """Errors for a handler name that is not a DNS label (RuntimeClass.handler must equal it)."""
    if isinstance(name, str) and DNS_LABEL.match(name):
        return []
    return [KatafleetError(
        "a runtime handler name must be a DNS label (lower case letters, digits and '-', at most 63), "
        "because RuntimeClass.handler must equal it%s" % ("; try %r" % name.replace("_", "-").lower()
                                                          if isinstance(name, str) and name else ""),
        path=path, key="name", value=name, rule="RFC 1123 DNS label")]


def normalize_handler(h, path):
    """Fill defaults and check one handler definition; returns (handler, errors)."""
    errors = []
    out = dict(HANDLER_DEFAULTS)
    out.update({k: v for k, v in h.items() if v is not None or k in ("runtime_path", "container_annotations",
                                                                     "snapshotter", "config_path")})
    name = out.get("name")
    errors.extend(check_handler_name(name, path))
    unknown = set(out) - set(HANDLER_DEFAULTS) - {"name"}
    if unknown:
        errors.append(KatafleetError("unknown handler option(s) %s; known: %s"
                                     % (sorted(unknown), sorted(HANDLER_DEFAULTS)), path=path, key=name,
                                     rule="handler options"))
    for key in ("runtime_type", "runtime_path", "snapshotter", "config_path"):
        if out.get(key) is not None and not isinstance(out[key], str):
            errors.append(KatafleetError("must be a string", path=path, key="%s.%s" % (name, key), value=out[key],
                                         rule="wrong type"))
    for key in ("pod_annotations", "container_annotations"):
        v = out.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(i, str) for i in v)):
            errors.append(KatafleetError("must be a list of strings", path=path, key="%s.%s" % (name, key), value=v,
                                         rule="wrong type"))
    if not isinstance(out.get("privileged_without_host_devices"), bool):
        errors.append(KatafleetError("must be a boolean", path=path, key="%s.privileged_without_host_devices" % name,
                                     value=out.get("privileged_without_host_devices"), rule="wrong type"))
    rt = out.get("runtime_type")
    if isinstance(rt, str) and not re.match(r"^io\.containerd\.[a-z0-9-]+\.v[0-9]+$", rt):
        errors.append(KatafleetError("not a shim v2 runtime type like io.containerd.kata.v2", path=path,
                                     key="%s.runtime_type" % name, value=rt, rule="runtime_type format"))
    return out, errors


def _runtime_items(h):
    items = {}
    for opt, key in MANAGED_KEYS:
        if h.get(opt) is not None:
            items[key] = h[opt]
    if h.get("config_path"):
        items["options"] = {"ConfigPath": h["config_path"]}
    return items


def default_runtime_ok(cri, runtimes):
    """(ok, name): CRI's default runtime is defined, either in ``runtimes`` or, in old v1/v2 files, as the
    deprecated ``containerd.default_runtime`` table with a runtime_type (containerd 1.x honours it)."""
    ctd = (cri or {}).get("containerd") or {}
    name = ctd.get("default_runtime_name") or "runc"
    legacy = ctd.get("default_runtime") or {}
    return (name in (runtimes or {}) or bool(legacy.get("runtime_type"))), name


def _get(data, path):
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def default_runtime_stanza(containerd_bin, name):
    """The built-in stanza of runtime ``name`` as ``containerd config default`` prints it (runtime_type only:
    the rest are the runtime's own defaults). Falls back to runc v2 where the binary cannot be asked."""
    try:
        out = subprocess.run([containerd_bin, "config", "default"], capture_output=True, text=True, timeout=30, check=False).stdout
        data = tomllib.loads(out)
        rt = (_get(data, runtimes_path(config_version(data))) or {}).get(name) or {}
        if rt.get("runtime_type"):
            return {"runtime_type": rt["runtime_type"]}
    except (OSError, ValueError, KatafleetError, subprocess.SubprocessError):
        pass
    return {"runtime_type": "io.containerd.runc.v2"}


def _edit_main(text, path, version, handlers, state, containerd_bin="containerd"):
    """Apply handlers to the main config text (state present/absent).

    A file that defined no runtime got runc from containerd's built-in defaults; defining a Kata runtime
    replaces that whole map, and CRI then refuses to start (LAB-NOTES section 4). So when the default
    runtime is not in the file, its built-in stanza is written too."""
    rpath = runtimes_path(version)
    quote = quote_style(text)
    for h in handlers:
        tpath = rpath + (h["name"],)
        data = tomledit.parse(text, path).unwrap()
        existing = _get(data, tpath)
        if state == "absent":
            if existing is not None:
                text = tomledit.remove_table(text, tpath)
            continue
        items = _runtime_items(h)
        if existing is None:
            siblings = [n for n in (_get(data, rpath) or {}) if isinstance(_get(data, rpath + (n,)), dict)]
            after = rpath + (siblings[-1],) if siblings else None
            if after is not None and tomledit.table_span(text, after) is None:
                after = None
            text = tomledit.append_table(text, tpath, items, after=after, quote=quote)
            continue
        sets, removes = [], []
        for opt, key in MANAGED_KEYS:
            if h.get(opt) is None:
                if key in existing:
                    removes.append((tpath, key))
            else:
                sets.append((tpath, key, h[opt]))
        opts = existing.get("options")
        if h.get("config_path"):
            if isinstance(opts, dict):
                sets.append((tpath + ("options",), "ConfigPath", h["config_path"]))
            else:
                text = tomledit.append_table(text, tpath + ("options",), {"ConfigPath": h["config_path"]},
                                             after=tpath, quote=quote)
        elif isinstance(opts, dict) and "ConfigPath" in opts:
            removes.append((tpath + ("options",), "ConfigPath"))
        text = tomledit.edit(text, path, sets=sets, removes=removes)
    if state == "present":
        data = tomledit.parse(text, path).unwrap()
        runtimes = _get(data, rpath) or {}
        ok, name = default_runtime_ok(_get(data, rpath[:-2]), runtimes)
        if not ok:
            last = rpath + (list(runtimes)[-1],)
            text = tomledit.append_table(text, rpath + (name,), default_runtime_stanza(containerd_bin, name),
                                         after=last if tomledit.table_span(text, last) else None, quote=quote)
    return text


def render_dropin(version, handlers):
    """A containerd 2.x drop-in holding exactly our handlers (owned by katafleet)."""
    text = "# Managed by katafleet (kata_containerd); local edits are overwritten.\nversion = %d\n" % version
    for h in handlers:
        text = tomledit.append_table(text, runtimes_path(version) + (h["name"],), _runtime_items(h), quote="'")
    return text


def binary_version(containerd_bin):
    """(major, minor, text) of the containerd binary, e.g. (1, 6, '1.6.20~ds1')."""
    try:
        out = subprocess.run([containerd_bin, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError as exc:
        raise KatafleetError("cannot run containerd: %s" % exc, key="containerd_bin", value=containerd_bin,
                             rule="validation needs the real containerd binary")
    m = re.search(r"\sv?(\d+)\.(\d+)\.(\S+)", out)
    if not m:
        raise KatafleetError("cannot read its version from %r" % out.strip(), key="containerd_bin", value=containerd_bin,
                             rule="containerd --version")
    return int(m.group(1)), int(m.group(2)), "%s.%s.%s" % m.groups()


def dump(containerd_bin, config_path):
    """``containerd --config FILE config dump``: (rc, stdout, stderr)."""
    proc = subprocess.run([containerd_bin, "--config", config_path, "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def validate(containerd_bin, path, main_text, handlers, state, version, dropin=None, removed=()):
    """Run the candidate through the real containerd and check the handlers in its dump.

    ``dropin``: (path, text) of a candidate drop-in that the main text imports; ``removed``: names of
    handlers that must be gone (reconcile)."""
    major, _minor, vtext = binary_version(containerd_bin)
    lay = LAYOUTS[version]
    if major < lay["min_major"] or (lay["max_major"] is not None and major > lay["max_major"]):
        raise KatafleetError(
            "config version %d is not read by containerd %s (needs %s); this node's containerd would ignore "
            "the runtime sections" % (version, vtext, "2.x" if lay["min_major"] == 2 else "1.x"),
            path=path, key="version", value=version, rule="config version must match the containerd binary")
    # the candidate sits beside the real file (as a dot-file) so that relative `imports` resolve the same way
    directory = os.path.dirname(os.path.abspath(path))
    made_dir = not os.path.isdir(directory)
    if made_dir:
        os.makedirs(directory)
    temps = []
    try:
        text = main_text
        if dropin is not None:
            dpath, dtext = dropin
            fd, cand_drop = tempfile.mkstemp(prefix=".katafleet-validate-", suffix=".dropin", dir=os.path.dirname(dpath) or directory)
            temps.append(cand_drop)
            with os.fdopen(fd, "w") as handle:
                handle.write(dtext)
            text = set_imports(text, path, [i if i != dpath else cand_drop for i in imports_of(text, path)])
        fd, cand = tempfile.mkstemp(prefix=".katafleet-validate-", suffix=".config", dir=directory)
        temps.append(cand)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        rc, out, err = dump(containerd_bin, cand)
    finally:
        for t in temps:
            try:
                os.unlink(t)
            except OSError:
                pass
        if made_dir:
            shutil.rmtree(directory, ignore_errors=True)
    if rc != 0:
        msg = err.strip().replace(cand, path)
        raise KatafleetError("containerd %s rejects the new config: %s" % (vtext, msg), path=path,
                             rule="containerd config dump must pass")
    dumped = tomllib.loads(out)
    dversion = dumped.get("version", 2)
    hint = ""
    imports = imports_of(main_text, path)
    if imports and major < 2:
        hint = ("; this file imports %s, and containerd 1.x replaces a whole plugin section from an imported file "
                "(DOMAIN.md section 6), so the runtimes of the imported file win: edit that file or drop the import"
                % ", ".join(imports))
    runtimes = _get(dumped, runtimes_path(dversion)) or {}
    errors = []
    for h in handlers:
        got = runtimes.get(h["name"])
        if state == "present":
            if not isinstance(got, dict):
                errors.append(KatafleetError(
                    "containerd %s accepted the file but dropped the runtime: it is not in `config dump` (unknown "
                    "plugin id or section for this containerd)%s" % (vtext, hint), path=path, key=h["name"],
                    rule="handler must appear in config dump"))
            elif got.get("runtime_type") != h["runtime_type"]:
                errors.append(KatafleetError("config dump shows runtime_type %r" % got.get("runtime_type"), path=path,
                                             key=h["name"], value=h["runtime_type"], rule="handler must appear in config dump"))
            elif h.get("config_path") and (got.get("options") or {}).get("ConfigPath") != h["config_path"]:
                errors.append(KatafleetError("config dump lost options.ConfigPath", path=path, key=h["name"],
                                             value=h["config_path"], rule="handler must appear in config dump"))
        elif got is not None:
            errors.append(KatafleetError("still in config dump after removal", path=path, key=h["name"],
                                         rule="removed handler must be gone"))
    for name in removed:
        if name in runtimes:
            errors.append(KatafleetError("still in config dump after removal", path=path, key=name,
                                         rule="removed handler must be gone"))
    ok, default = default_runtime_ok(_get(dumped, runtimes_path(dversion)[:-2]), runtimes)
    if not ok:
        errors.append(KatafleetError(
            "default_runtime_name names a runtime that is not defined; containerd's CRI plugin would not start",
            path=path, key="default_runtime_name", value=default, rule="default runtime must be defined"))
    raise_all(errors)
    return vtext


def imports_of(text, path):
    return list(tomledit.parse(text, path).unwrap().get("imports", []) or [])


def set_imports(text, path, imports):
    """Set the top-level ``imports`` list (keeps the rest of the file)."""
    doc = tomledit.parse(text, path)
    if not imports and "imports" not in doc:
        return text
    if "imports" in doc:
        if list(doc["imports"]) == imports:
            return text
        doc["imports"] = imports
        return doc.as_string()
    # top-level keys must come before the first table: insert after `version = N` (or at the top)
    lines = text.splitlines(True)
    pos = 0
    for i, line in enumerate(lines):
        if re.match(r"^\s*version\s*=", line):
            pos = i + 1
            break
    lines.insert(pos, "imports = %s\n" % tomledit.tomlkit.item(imports).as_string())
    return "".join(lines)


def kata_cross_checks(handlers, kata_default_config="/etc/kata-containers/configuration.toml"):
    """Warnings from the Kata side: annotations that pod_annotations does not pass, missing ConfigPath."""
    warnings = []
    for h in handlers:
        cfg = h.get("config_path") or kata_default_config
        if h.get("config_path") and not os.path.exists(h["config_path"]):
            warnings.append("handler %s: config_path %s does not exist on this node; the shim will fail to start "
                            "sandboxes" % (h["name"], h["config_path"]))
            continue
        text = fileio.read_text(cfg)
        if text is None:
            continue
        try:
            data = tomllib.loads(text)
        except ValueError:
            continue
        pats = h.get("pod_annotations") or []
        for hvname, hv in (data.get("hypervisor") or {}).items():
            for regex in hv.get("enable_annotations") or []:
                sample = "io.katacontainers.config.hypervisor." + (regex if re.match(r"^[a-z0-9_]+$", regex) else "x")
                if not any(fnmatch.fnmatchcase(sample, p) for p in pats):
                    warnings.append(
                        "handler %s: %s allows annotation %s ([hypervisor.%s] enable_annotations) but pod_annotations "
                        "%s does not pass it to the runtime" % (h["name"], cfg, sample, hvname, pats))
    return warnings


class Plan(object):
    def __init__(self, path, before, after, dropin_path, dropin_before, dropin_after, version, warnings, validated_by):
        self.path = path
        self.before = before
        self.after = after
        self.dropin_path = dropin_path
        self.dropin_before = dropin_before
        self.dropin_after = dropin_after
        self.version = version
        self.warnings = warnings
        self.validated_by = validated_by
        self.base = None  # the text the edit started from (`containerd config default` for a new file)

    @property
    def changed(self):
        return self.before != self.after or self.dropin_before != self.dropin_after


def release_stanzas(text, path, version, remove=(), restore=None):
    """Take handlers out of a main config: ``remove`` (names) are deleted, ``restore`` ({name: table}) are put
    back as they were before katafleet changed them."""
    restore = restore or {}
    rpath = runtimes_path(version)
    quote = quote_style(text)
    for name in list(remove) + sorted(restore):
        if _get(tomledit.parse(text, path).unwrap(), rpath + (name,)) is not None:
            text = tomledit.remove_table(text, rpath + (name,))
    for name in sorted(restore):
        data = tomledit.parse(text, path).unwrap()
        siblings = [n for n in (_get(data, rpath) or {}) if isinstance(_get(data, rpath + (n,)), dict)]
        after = rpath + (siblings[-1],) if siblings else None
        if after is not None and tomledit.table_span(text, after) is None:
            after = None
        text = tomledit.append_table(text, rpath + (name,), restore[name], after=after, quote=quote)
    return text


def handler_definitions(text, path, extra_texts=()):
    """{name: {runtime_type, runtime_path}} of every runtime the config (and its drop-ins) defines."""
    out = {}
    for t in [text] + list(extra_texts):
        if not t:
            continue
        data = tomledit.parse(t, path).unwrap()
        try:
            version = config_version(data)
        except KatafleetError:
            continue
        for name, rt in (_get(data, runtimes_path(version)) or {}).items():
            if isinstance(rt, dict):
                out[name] = {"runtime_type": rt.get("runtime_type"), "runtime_path": rt.get("runtime_path")}
    return out


def plan(path=DEFAULT_PATH, handlers=(), state="present", dropin=None, containerd_bin="containerd",
         validate_config=True, kata_default_config="/etc/kata-containers/configuration.toml",
         remove=(), restore=None):
    """Compute the new config (and drop-in); validate with the real binary unless told not to.

    ``remove``/``restore`` (state present, reconcile): handlers no longer listed, deleted or put back as they
    were before katafleet changed them (see ``release_stanzas``)."""
    remove, restore = list(remove), dict(restore or {})
    handlers = list(handlers)
    errors = []
    norm = []
    if not handlers:
        errors.append(KatafleetError("no handlers given", path=path, key="handlers", rule="at least one handler"))
    names = set()
    for h in handlers:
        if not isinstance(h, dict):
            errors.append(KatafleetError("a handler is a dict with at least a name", path=path, value=h, rule="handler format"))
            continue
        if state == "absent":
            nh = {"name": h.get("name")}
            errors.extend(check_handler_name(nh["name"], path))
        else:
            nh, errs = normalize_handler(h, path)
            errors.extend(errs)
        if nh.get("name") in names:
            errors.append(KatafleetError("handler listed twice", path=path, key=nh.get("name"), rule="unique names"))
        names.add(nh.get("name"))
        norm.append(nh)
    raise_all(errors)

    before = fileio.read_text(path)
    base = before
    if base is None:
        proc = subprocess.run([containerd_bin, "config", "default"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise KatafleetError("does not exist and `containerd config default` failed: %s" % proc.stderr.strip(),
                                 path=path, rule="create from containerd config default")
        base = proc.stdout
    data = tomledit.parse(base, path).unwrap()
    version = config_version(data)

    dropin_path = dropin_before = dropin_after = None
    if dropin:
        if version < 3:
            raise KatafleetError(
                "drop-ins (imports) need containerd 2.x (config version 3+): containerd 1.x replaces a whole plugin "
                "section from a drop-in, which silently wipes the main file's CRI settings (seen on 1.6.20); this file "
                "is version %d, so katafleet edits the main file instead" % version,
                path=path, key="dropin", value=dropin, rule="no drop-ins on containerd 1.x")
        dropin_path = dropin if os.path.isabs(dropin) else os.path.join(os.path.dirname(path), dropin)
        dropin_before = fileio.read_text(dropin_path)
        imports = imports_of(base, path)
        if state == "present":
            dropin_after = render_dropin(version, norm)
            if dropin_path not in imports and not any(fnmatch.fnmatch(dropin_path, i) for i in imports):
                imports = imports + [dropin_path]
        else:
            dropin_after = None
            imports = [i for i in imports if i != dropin_path]
        after = set_imports(base, path, imports)
    else:
        released = release_stanzas(base, path, version, remove, restore) if remove or restore else base
        after = _edit_main(released, path, version, norm, state, containerd_bin)

    # an `imports` entry pointing at a missing file stops containerd (a kata-deploy uninstall failure)
    directory = os.path.dirname(os.path.abspath(path))
    for imp in imports_of(after, path):
        full = imp if os.path.isabs(imp) else os.path.join(directory, imp)
        if any(c in imp for c in "*?["):
            continue
        if full == dropin_path and dropin_after is not None:
            continue
        if not os.path.exists(full):
            raise KatafleetError("imports a file that does not exist; containerd would not start",
                                 path=path, key="imports", value=imp, rule="no dangling imports")

    # CRI's default runtime must stay defined (checked here too, not only by the binary)
    adata = tomledit.parse(after, path).unwrap()
    defined = dict(_get(adata, runtimes_path(version)) or {})
    if dropin_after:
        defined.update(_get(tomllib.loads(dropin_after), runtimes_path(version)) or {})
    ok, default = default_runtime_ok(_get(adata, runtimes_path(version)[:-2]), defined)
    if defined and not ok:
        raise KatafleetError("default_runtime_name names a runtime that is not defined; containerd's CRI plugin would "
                             "refuse to start", path=path, key="default_runtime_name", value=default,
                             rule="default runtime must be defined")

    warnings = kata_cross_checks(norm, kata_default_config) if state == "present" else []
    validated_by = None
    if validate_config and (after != before or dropin_after != dropin_before):
        validated_by = validate(containerd_bin, path, after, norm, state, version,
                                dropin=(dropin_path, dropin_after) if dropin_after else None, removed=remove)
    result = Plan(path, before, after, dropin_path, dropin_before, dropin_after, version, warnings, validated_by)
    result.base = base
    return result


def record_plan(entry, p, listed, released=(), adopted=()):
    """Update an ownership entry (ownership.containerd_entry) for plan ``p`` (state present): the handlers
    listed, with the stanza that was there before katafleet changed it (None: katafleet created it, or took
    it over from kata-deploy: ``adopted``), the runtimes it added for CRI's default, the file if it created
    it, its drop-in and ``imports`` entry; ``released`` handlers (reconciled away) are forgotten."""
    for name in released:
        entry["handlers"].pop(name, None)
    base = tomllib.loads(p.base) if p.base else {}
    rpath = runtimes_path(p.version)
    before_rts = _get(base, rpath) or {}
    if p.before is None and not entry.get("created"):
        entry["created"] = {"digest": ownership.data_digest(base)}
    if p.dropin_path:
        entry["dropin"] = p.dropin_path
        if p.dropin_path in imports_of(p.after, p.path) and p.dropin_path not in imports_of(p.base, p.path) \
                and p.dropin_path not in entry["imports_added"]:
            entry["imports_added"].append(p.dropin_path)
        for name in listed:
            entry["handlers"].setdefault(name, {"before": None})
        return entry
    after_rts = _get(tomllib.loads(p.after), rpath) or {}
    for name in listed:
        if name not in entry["handlers"]:
            keep = name in before_rts and name not in adopted
            entry["handlers"][name] = {"before": before_rts[name] if keep else None}
    for name in sorted(set(after_rts) - set(before_rts) - set(listed)):
        if name not in entry["added_runtimes"]:
            entry["added_runtimes"].append(name)
    return entry


def _drop_imports(text, path, drop):
    doc = tomledit.parse(text, path)
    if "imports" not in doc:
        return text
    keep = [i for i in doc["imports"] if i not in drop]
    if keep:
        return set_imports(text, path, keep)
    del doc["imports"]
    return doc.as_string()


def plan_uninstall(path, entry, containerd_bin="containerd", validate_config=True):
    """Remove what an ownership entry says katafleet owns in one containerd config: its handler stanzas (put
    back as they were where katafleet had changed an existing one), the runtimes it added for CRI's default
    (only when no other runtime is left in the file, since defining any runtime replaces containerd's built-in
    map), its drop-in and ``imports`` entries, and the file itself when katafleet created it and what is left
    is what it was created from. Validated by the real containerd like any other edit."""
    handlers = entry.get("handlers") or {}
    remove = sorted(n for n, h in handlers.items() if not (h or {}).get("before"))
    restore = {n: h["before"] for n, h in handlers.items() if (h or {}).get("before")}
    dropin_path = entry.get("dropin")
    dropin_before = fileio.read_text(dropin_path) if dropin_path else None
    before = fileio.read_text(path)
    if before is None:
        return Plan(path, None, None, dropin_path, dropin_before, None, None, [], None)
    version = config_version(tomledit.parse(before, path).unwrap())
    text = before
    if entry.get("imports_added"):
        text = _drop_imports(text, path, entry["imports_added"])
    if not dropin_path:
        text = release_stanzas(text, path, version, remove, restore)
        added = entry.get("added_runtimes") or []
        left = _get(tomledit.parse(text, path).unwrap(), runtimes_path(version)) or {}
        if added and set(left) <= set(added):
            text = release_stanzas(text, path, version, [n for n in added if n in left])
    after = text
    created = entry.get("created")
    if created and ownership.data_digest(tomllib.loads(after)) == created.get("digest"):
        after = None
    validated_by = None
    if validate_config and after is not None and after != before:
        validated_by = validate(containerd_bin, path, after, [], "absent", version,
                                removed=[] if dropin_path else remove)
    return Plan(path, before, after, dropin_path, dropin_before, None, version, [], validated_by)


def apply(p, backup=False, backup_dir=fileio.DEFAULT_BACKUP_DIR):
    """Write the drop-in first, then the main file (so an import never points at a missing file);
    on removal, the main file first, then delete the drop-in.

    Returns {file: backup path, or None where the file did not exist before} for every file changed
    (empty without ``backup``): what a rollback restores, and what it deletes."""
    backups = {}
    for target, b, a in ((p.path, p.before, p.after), (p.dropin_path, p.dropin_before, p.dropin_after)):
        if backup and target and b != a:
            backups[target] = fileio.backup(target, backup_dir) if b is not None else None
    if p.dropin_after is not None and p.dropin_after != p.dropin_before:
        fileio.atomic_write(p.dropin_path, p.dropin_after)
    if p.after != p.before:
        if p.after is None:
            os.unlink(p.path)
        else:
            fileio.atomic_write(p.path, p.after)
    if p.dropin_path and p.dropin_after is None and p.dropin_before is not None:
        os.unlink(p.dropin_path)
    return backups
