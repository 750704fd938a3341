"""Kubernetes feature gates Kata needs, by gate lifecycle and Kubernetes version, in the files kubeadm
nodes keep them in. Every edit changes only the line that holds the gates.

Lifecycles (data; source: kubernetes.io/docs/reference/command-line-tools-reference/feature-gates-removed/,
kubernetes/kubernetes pkg/features/kube_features.go; DOMAIN.md section 4):
- PodOverhead: alpha 1.16 (off), beta 1.18 (on), GA 1.24 (locked on), removed 1.26;
- RuntimeClass: alpha 1.12 (off), beta 1.14 (on), GA 1.20 (locked on), removed 1.24.
A removed gate makes kube-apiserver and the kubelet exit at start ("unrecognized feature gate"): a present
entry is removed, which is what keeps an upgrade to 1.26+ safe.

File kinds:
- ``apiserver_manifest``: the kube-apiserver static pod (``--feature-gates=`` in the container command; also
  keeps the RuntimeClass admission plugin out of ``--disable-admission-plugins``);
- ``kubelet_config``: KubeletConfiguration YAML (``featureGates:`` map);
- ``kubelet_flags``: ``VAR="--flag ..."`` files (kubeadm-flags.env KUBELET_KUBEADM_ARGS, /etc/default/kubelet
  KUBELET_EXTRA_ARGS) and systemd drop-ins (``Environment="KUBELET_FEATURE=--feature-gates=..."``).
"""

import re

try:
    import yaml
except ImportError:  # the version helpers (kata_runtimeclass) need no YAML; kata_feature_gates checks for it
    yaml = None

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError, raise_all

# gate -> lifecycle (None = never reached that stage)
GATES = {
    "PodOverhead": {"alpha": (1, 16), "beta": (1, 18), "ga": (1, 24), "removed": (1, 26)},
    "RuntimeClass": {"alpha": (1, 12), "beta": (1, 14), "ga": (1, 20), "removed": (1, 24)},
}


def parse_version(text):
    """'v1.29.0', '1.29', 'Kubernetes v1.23.17' -> (1, 29)."""
    m = re.search(r"v?(\d+)\.(\d+)", str(text or ""))
    if not m:
        raise KatafleetError("not a Kubernetes version", key="kubernetes_version", value=text,
                             rule="version like 1.29 or v1.29.0")
    return int(m.group(1)), int(m.group(2))


def vstr(v):
    return "%d.%d" % v


def stage(gate, version):
    """alpha | beta | ga | removed | absent (before alpha)."""
    life = GATES[gate]
    if version >= life["removed"]:
        return "removed"
    if version >= life["ga"]:
        return "ga"
    if version >= life["beta"]:
        return "beta"
    if version >= life["alpha"]:
        return "alpha"
    return "absent"


def decide(gate, want, current, version, state="present"):
    """What to do with one gate: returns (new value or None to remove, message, error or None).

    ``want``: desired bool; ``current``: value in the file (bool) or None when absent."""
    st = stage(gate, version)
    life = GATES[gate]
    v = vstr(version)
    if st == "removed":
        if current is None:
            return None, "%s: removed in %s, nothing to do on %s" % (gate, vstr(life["removed"]), v), None
        return None, ("%s: removed in Kubernetes %s; the entry is removed because kube-apiserver and the kubelet "
                      "exit on an unrecognized feature gate" % (gate, vstr(life["removed"]))), None
    if state == "absent":
        return None, "%s: entry removed (state=absent)" % gate, None
    if st == "absent":
        return current, None, "%s does not exist before Kubernetes %s (target %s)" % (gate, vstr(life["alpha"]), v)
    if st == "ga":
        if want is False:
            return current, None, ("%s is GA and locked to true since %s; it cannot be set to false on %s"
                                   % (gate, vstr(life["ga"]), v))
        if current is False:
            return None, "%s: locked to true on %s; the entry =false would stop the component, removed" % (gate, v), None
        return current, "%s: GA (locked on) on %s, not needed" % (gate, v), None
    if st == "beta":
        if want is True:
            if current is False:
                return None, "%s: on by default on %s; the entry =false disabled it, removed" % (gate, v), None
            return current, "%s: beta, on by default on %s, not needed" % (gate, v), None
        return False, "%s: set to false on %s" % (gate, v), None
    # alpha: off by default
    if want is True:
        return True, "%s: alpha, off by default on %s: set to true" % (gate, v), None
    return (False if current is not None else None), "%s: alpha, off by default on %s" % (gate, v), None


# ---------- gate strings ----------

def parse_gate_list(text):
    """'A=true,B=false' -> ordered [(name, value_text)]."""
    out = []
    for item in [i.strip() for i in text.split(",") if i.strip()]:
        name, dummy, value = item.partition("=")
        out.append((name.strip(), value.strip()))
    return out


def render_gate_list(items):
    return ",".join("%s=%s" % (k, v) for k, v in items)


def as_bool(text):
    t = str(text).strip().lower()
    if t == "true":
        return True
    if t == "false":
        return False
    return None


def apply_to_items(items, decisions):
    """items: [(name, value_text)] -> new items after decisions {gate: (value or None)}."""
    out = []
    seen = set()
    for name, value in items:
        if name in decisions:
            seen.add(name)
            new = decisions[name]
            if new is not None:
                out.append((name, "true" if new else "false"))
        else:
            out.append((name, value))
    for name, new in decisions.items():
        if name not in seen and new is not None:
            out.append((name, "true" if new else "false"))
    return out


# ---------- file kinds ----------

def detect_kind(text, path):
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        if data.get("kind") == "Pod":
            return "apiserver_manifest"
        if data.get("kind") == "KubeletConfiguration":
            return "kubelet_config"
    if re.search(r"^\s*(Environment=\"?)?[A-Z_][A-Z0-9_]*=", text, re.M):
        return "kubelet_flags"
    raise KatafleetError("cannot tell what this file is (static pod manifest, KubeletConfiguration, or a kubelet "
                         "flags file); pass kind=", path=path, rule="file kind")


def _load_yaml(text, path):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        raise KatafleetError("not valid YAML%s: %s; the file was left untouched"
                             % (where, getattr(exc, "problem", exc)), path=path, rule="parsable manifest")


def apiserver_container(data, path):
    try:
        for c in data["spec"]["containers"]:
            if c.get("name") == "kube-apiserver" or any("kube-apiserver" in str(x) for x in c.get("command", [])[:1]):
                return c
    except (KeyError, TypeError):
        pass
    raise KatafleetError("no kube-apiserver container with a command list", path=path, rule="kube-apiserver manifest")


def version_from_manifest(text, path):
    data = _load_yaml(text, path)
    image = apiserver_container(data, path).get("image", "")
    m = re.search(r":v?(\d+\.\d+)", image)
    if not m:
        raise KatafleetError("cannot read the Kubernetes version from the image tag", path=path, key="image",
                             value=image, rule="give kubernetes_version")
    return parse_version(m.group(1))


def _flag_lines(text, flag):
    """Indexes of the command list lines ``- --flag=...``."""
    rx = re.compile(r"^(\s*-\s+)%s=(.*?)\s*$" % re.escape(flag))
    return [(i, rx.match(line)) for i, line in enumerate(text.splitlines(True)) if rx.match(line)]


def edit_manifest(text, path, decide_fn):
    """Edit ``--feature-gates`` (and the RuntimeClass admission plugin) of the kube-apiserver command."""
    data = _load_yaml(text, path)
    container = apiserver_container(data, path)
    command = container.get("command") or []
    lines = text.splitlines(True)
    messages = []
    found = _flag_lines(text, "--feature-gates")
    current = parse_gate_list(found[0][1].group(2)) if found else []
    decisions, msgs = decide_fn({k: as_bool(v) for k, v in current})
    messages += msgs
    new_items = apply_to_items(current, decisions)
    if found:
        idx, m = found[0]
        if new_items:
            lines[idx] = "%s--feature-gates=%s\n" % (m.group(1), render_gate_list(new_items))
        else:
            lines[idx] = None
    elif new_items:
        # insert among the flags, in kubeadm's sorted order
        flags = [(i, l) for i, l in enumerate(lines) if re.match(r"^\s*-\s+--[a-z0-9-]+(=|\s*$)", l)]
        if not flags:
            raise KatafleetError("kube-apiserver command has no --flags to put --feature-gates beside", path=path,
                                 rule="kube-apiserver manifest")
        prefix = re.match(r"^(\s*-\s+)", flags[0][1]).group(1)
        pos = flags[-1][0] + 1
        for i, l in flags:
            if l.strip()[2:].strip() > "--feature-gates":
                pos = i
                break
        lines.insert(pos, "%s--feature-gates=%s\n" % (prefix, render_gate_list(new_items)))
    # the RuntimeClass admission plugin injects overhead.podFixed into pods: it must not be disabled
    lines = "".join(l for l in lines if l is not None).splitlines(True)
    for idx, m in _flag_lines("".join(lines), "--disable-admission-plugins"):
        plugins = [p.strip() for p in m.group(2).split(",") if p.strip()]
        if "RuntimeClass" in plugins:
            plugins = [p for p in plugins if p != "RuntimeClass"]
            lines[idx] = "%s--disable-admission-plugins=%s\n" % (m.group(1), ",".join(plugins)) if plugins else None
            messages.append("RuntimeClass admission plugin was disabled; it injects overhead.podFixed into pods, so it "
                            "was taken out of --disable-admission-plugins")
    new_text = "".join(l for l in lines if l is not None)
    # the YAML must still parse, and only the container command may have changed
    new_data = _load_yaml(new_text, path)
    apiserver_container(new_data, path)["command"] = command
    if new_data != data:
        raise KatafleetError("refusing an edit that would change more than the kube-apiserver command", path=path,
                             rule="only --feature-gates changes")
    return new_text, messages


def edit_kubelet_config(text, path, decide_fn):
    """Edit the top-level ``featureGates:`` map of a KubeletConfiguration, line by line."""
    data = _load_yaml(text, path)
    gates = data.get("featureGates") or {}
    if not isinstance(gates, dict):
        raise KatafleetError("featureGates is not a map", path=path, key="featureGates", value=gates,
                             rule="KubeletConfiguration")
    decisions, messages = decide_fn({k: v if isinstance(v, bool) else as_bool(v) for k, v in gates.items()})
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    head = [i for i, l in enumerate(lines) if re.match(r"^featureGates:", l)]
    block_end = None
    indent = "  "
    if head:
        h = head[0]
        if re.match(r"^featureGates:\s*\{.*\}\s*$", lines[h]):  # flow style: rewrite that one line
            new = dict(gates)
            for k, v in decisions.items():
                if v is None:
                    new.pop(k, None)
                else:
                    new[k] = v
            lines[h] = ("featureGates: {%s}\n" % ", ".join("%s: %s" % (k, str(v).lower()) for k, v in new.items())
                        if new else None)
        else:
            block_end = h + 1
            while block_end < len(lines) and (lines[block_end].startswith((" ", "\t")) or not lines[block_end].strip()):
                block_end += 1
            for i in range(h + 1, block_end):
                m = re.match(r"^(\s+)([A-Za-z0-9]+):\s*(\S+)\s*$", lines[i])
                if m:
                    indent = m.group(1)
                    if m.group(2) in decisions:
                        v = decisions[m.group(2)]
                        lines[i] = None if v is None else "%s%s: %s\n" % (indent, m.group(2), str(v).lower())
            present = set(gates)
            add = ["%s%s: %s\n" % (indent, k, str(v).lower()) for k, v in decisions.items()
                   if v is not None and k not in present]
            last = max([i for i in range(h + 1, block_end) if lines[i] is not None and lines[i].strip()] or [h])
            lines[last + 1:last + 1] = add
            if not any(l is not None and l.strip() for l in lines[h + 1:block_end + len(add)]):
                lines[h] = None
    else:
        add = ["%s%s: %s\n" % (indent, k, str(v).lower()) for k, v in decisions.items() if v is not None]
        if add:
            # kubeadm writes keys sorted: put featureGates before the first top-level key that sorts after it
            pos = len(lines)
            for i, l in enumerate(lines):
                m = re.match(r"^([A-Za-z][A-Za-z0-9]*):", l)
                if m and m.group(1) > "featureGates" and m.group(1) not in ("apiVersion",):
                    pos = i
                    break
            lines[pos:pos] = ["featureGates:\n"] + add
    new_text = "".join(l for l in lines if l is not None)
    new_data = _load_yaml(new_text, path)
    want = dict(gates)
    for k, v in decisions.items():
        if v is None:
            want.pop(k, None)
        else:
            want[k] = v
    check = dict(data)
    check.pop("featureGates", None)
    got = dict(new_data)
    got_gates = got.pop("featureGates", None) or {}
    if got != check or got_gates != want:
        raise KatafleetError("refusing an edit that would change more than featureGates", path=path,
                             rule="only featureGates changes")
    return new_text, messages


_ENV_LINE = re.compile(r'^(?P<pre>\s*(?:Environment=)?(?P<q1>"?))(?P<var>[A-Z_][A-Z0-9_]*)=(?P<q2>"?)(?P<val>.*?)(?P=q2)(?P=q1)\s*$')


def edit_flags_file(text, path, decide_fn, variable=None):
    """Edit ``--feature-gates`` inside ``VAR="..."`` / ``Environment="VAR=..."`` lines."""
    lines = text.splitlines(True)
    candidates = [(i, _ENV_LINE.match(l.rstrip("\n"))) for i, l in enumerate(lines)]
    candidates = [(i, m) for i, m in candidates if m and not lines[i].lstrip().startswith("#")]
    if variable:
        candidates = [(i, m) for i, m in candidates if m.group("var") == variable]
    else:
        with_fg = [(i, m) for i, m in candidates if "--feature-gates" in m.group("val")]
        candidates = with_fg or candidates
    if not candidates:
        raise KatafleetError("no %s line to hold --feature-gates" % (variable or "VAR=\"...\""), path=path,
                             key=variable, rule="kubelet flags file")
    idx, m = candidates[0]
    val = m.group("val")
    fg = re.search(r"(--feature-gates[= ])(\S*)", val)
    current = parse_gate_list(fg.group(2)) if fg else []
    decisions, messages = decide_fn({k: as_bool(v) for k, v in current})
    new_items = apply_to_items(current, decisions)
    if fg:
        if new_items:
            val = val[:fg.start()] + fg.group(1) + render_gate_list(new_items) + val[fg.end():]
        else:
            val = (val[:fg.start()].rstrip() + " " + val[fg.end():].lstrip()).strip()
    elif new_items:
        val = (val + " --feature-gates=" + render_gate_list(new_items)).strip()
    quote = m.group("q2")  # keep the file's own quoting (systemd EnvironmentFile takes the rest of the line)
    newline = "%s%s=%s%s%s%s\n" % (m.group("pre"), m.group("var"), quote, val, quote, m.group("q1"))
    if lines[idx].rstrip("\n") != newline.rstrip("\n"):
        lines[idx] = newline if lines[idx].endswith("\n") else newline.rstrip("\n")
    return "".join(lines), messages


EDITORS = {"apiserver_manifest": edit_manifest, "kubelet_config": edit_kubelet_config, "kubelet_flags": edit_flags_file}


def plan(text, path, gates, version, state="present", kind="auto", variable=None):
    """New text and messages for ``gates`` ({name: bool}) on Kubernetes ``version`` ((major, minor))."""
    errors = []
    for name, value in gates.items():
        if name not in GATES:
            errors.append(KatafleetError("katafleet does not know this gate's lifecycle; known: %s"
                                         % ", ".join(sorted(GATES)), path=path, key=name, value=value,
                                         rule="known feature gate"))
        elif not isinstance(value, bool):
            errors.append(KatafleetError("a feature gate value must be true or false", path=path, key=name,
                                         value=value, rule="boolean gate value"))
    raise_all(errors)
    if kind == "auto":
        kind = detect_kind(text, path)
    if kind not in EDITORS:
        raise KatafleetError("unknown file kind", path=path, key="kind", value=kind, rule=", ".join(EDITORS))

    # a removed gate that the file still carries is removed even if not asked about (upgrade safety)
    def decide_fn(current):
        decisions, messages, errs = {}, [], []
        names = list(gates) + [g for g in current if g in GATES and g not in gates and stage(g, version) == "removed"]
        for name in names:
            new, msg, err = decide(name, gates.get(name), current.get(name), version, state)
            if err:
                errs.append(KatafleetError(err, path=path, key=name, value=gates.get(name), rule="gate lifecycle"))
                continue
            if msg:
                messages.append(msg)
            if new != current.get(name) or (new is None and name in current):
                decisions[name] = new
        raise_all(errs)
        return decisions, messages

    if kind == "kubelet_flags":
        new_text, messages = edit_flags_file(text, path, decide_fn, variable)
    else:
        new_text, messages = EDITORS[kind](text, path, decide_fn)
    return kind, new_text, messages
