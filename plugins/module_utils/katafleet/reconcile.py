"""Ownership-aware runs of the file modules: reconcile (what the inventory dropped goes), uninstall (what
the record lists goes), the running-sandbox guard and the kata-deploy guard, between the modules' plain
edit logic (containerd, kata_config, feature_gates) and the ownership record (ownership).

Reconcile rule (containerd): the handlers the record lists for a config file minus the handlers the
inventory lists now are removed by the same edit that applies the listed ones (a stanza that existed
before katafleet changed it is put back as it was); validated by the real containerd; refused while
sandboxes of a removed handler run, unless forced.
"""

import copy
import os
import re

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import (
    containerd, feature_gates, fileio, katadeploy, ownership, sandboxes)
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


class Refused(KatafleetError):
    """A refusal with structured details for the module result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


class _Recorded(object):
    def __init__(self, record_path):
        self.record_path = record_path
        self.record = ownership.load(record_path) if record_path else None
        self.record_before = copy.deepcopy(self.record)
        self.warnings = []

    @property
    def record_changed(self):
        if self.record is None:
            return False
        return ownership.render(self.record) != ownership.render(self.record_before)

    def record_diff(self):
        return ownership.diff(self.record_path, self.record_before, self.record)

    def save(self):
        if self.record is not None:
            ownership.save(self.record_path, self.record)


class ContainerdRun(_Recorded):
    """One kata_containerd invocation. ``params``: the module's parameters."""

    def __init__(self, params, containerd_bin, ctr_bin=None, proc="/proc"):
        super().__init__(params.get("ownership"))
        self.p = params
        self.bin = containerd_bin
        self.ctr_bin = ctr_bin
        self.proc = proc
        self.removed = []
        self.findings = []
        self.sandboxes = None

    def _entry_view(self):
        return ((self.record or {}).get("containerd") or {}).get(self.p["path"]) or {}

    def _guard_kata_deploy(self, text, listed):
        view = self._entry_view()
        adopted = ((self.record or {}).get("adopted") or {}).get("containerd") or []
        ignore_files = [f for f in [view.get("dropin"), self.p.get("dropin")] if f]
        found = katadeploy.containerd_findings(self.p["path"], text, ignore_handlers=sorted(view.get("handlers") or {}),
                                               ignore_files=ignore_files)
        self.findings = found
        fresh = [f for f in found if f not in adopted]
        if not fresh:
            return []
        if not self.p.get("adopt_kata_deploy"):
            raise Refused("kata-deploy manages containerd's config on this node:\n- %s\n%s"
                          % ("\n- ".join(fresh), katadeploy.ADOPT_HINT
                             % "adopt_kata_deploy (role variable kata_containerd_adopt_kata_deploy)"),
                          kata_deploy=found)
        if self.record is None:
            raise KatafleetError("adopting kata-deploy's files needs an ownership record (option ownership)",
                                 path=self.p["path"], key="adopt_kata_deploy", rule="adoption is recorded")
        ownership.record_adopted(self.record, "containerd", fresh)
        self.warnings.append("adopted from kata-deploy: %s" % "; ".join(fresh))
        defs = containerd.handler_definitions(text, self.p["path"]) if text else {}
        return [n for n in listed if n in defs]

    def _guard_sandboxes(self, names, text, extra_texts=()):
        defs = containerd.handler_definitions(text, self.p["path"], extra_texts) if text else {}
        names = [n for n in names if n in defs]
        if not names:
            return
        ctr_run = sandboxes.ctr_runner(self.ctr_bin, self.p.get("address") or "/run/containerd/containerd.sock") \
            if self.ctr_bin else None
        found = sandboxes.running(defs, proc=self.proc, ctr_run=ctr_run)
        self.sandboxes = found
        block = sandboxes.blocking(found, names)
        if not block:
            return
        if self.p.get("force"):
            self.warnings.append("force: " + sandboxes.refusal(block).replace("refusing to remove", "removing", 1))
            return
        raise Refused(sandboxes.refusal(block, "force (role variable kata_containerd_force)"),
                      running_sandboxes=found, blocked_handlers=sorted(block))

    def plan(self):
        p = self.p
        path = p["path"]
        text = fileio.read_text(path)
        listed = [h.get("name") for h in p["handlers"] or []]
        view = self._entry_view()
        owned = view.get("handlers") or {}
        dropin_texts = [fileio.read_text(d) for d in dict.fromkeys((view.get("dropin"), p.get("dropin"))) if d]
        if p["state"] == "absent" and not listed:
            if self.record is None:
                raise KatafleetError("state=absent without handlers removes what katafleet owns, which needs the "
                                     "ownership record (option ownership)", path=path, key="handlers",
                                     rule="uninstall needs the record")
            self._guard_kata_deploy(text, [])
            self._guard_sandboxes(sorted(owned), text, dropin_texts)
            plan = containerd.plan_uninstall(path, view, containerd_bin=self.bin, validate_config=p["validate"])
            self.removed = sorted(n for n, h in owned.items() if not (h or {}).get("before")) if plan.changed else []
            (self.record.get("containerd") or {}).pop(path, None)
            return plan
        adopted = self._guard_kata_deploy(text, listed)
        if p["state"] == "absent":
            self._guard_sandboxes(listed, text, dropin_texts)
            plan = containerd.plan(path=path, handlers=p["handlers"], state="absent", dropin=p["dropin"],
                                   containerd_bin=self.bin, validate_config=p["validate"],
                                   kata_default_config=p["kata_config"])
            self.removed = listed if plan.changed else []
            if self.record is not None and view:
                entry = ownership.containerd_entry(self.record, path)
                for name in listed:
                    entry["handlers"].pop(name, None)
            return plan
        stale = sorted(set(owned) - set(listed)) if (self.record is not None and p.get("prune", True)) else []
        remove = [n for n in stale if not (owned[n] or {}).get("before")]
        restore = {n: owned[n]["before"] for n in stale if (owned[n] or {}).get("before")}
        if stale:
            self._guard_sandboxes(stale, text, dropin_texts)
        plan = containerd.plan(path=path, handlers=p["handlers"], state="present", dropin=p["dropin"],
                               containerd_bin=self.bin, validate_config=p["validate"],
                               kata_default_config=p["kata_config"], remove=remove, restore=restore)
        self.removed = remove
        if self.record is not None:
            entry = ownership.containerd_entry(self.record, path)
            containerd.record_plan(entry, plan, listed, released=stale, adopted=adopted)
        return plan


# ---------- Kata config files and feature gates ----------

def record_kata(record, plan, source=None, dropin=False):
    """After a kata_config write: a drop-in is katafleet's; a main file that did not exist was created from
    ``source`` (the /etc copy)."""
    if dropin:
        ownership.record_kata_file(record, plan.target, "dropin")
    elif plan.before is None:
        ownership.record_kata_file(record, plan.target, "created", source)


def guard_kata(record, target, adopt):
    """kata-deploy's traces on the Kata file katafleet would write; returns the findings (refused unless adopt)."""
    owned = list((record or {}).get("kata") or {})
    adopted = ((record or {}).get("adopted") or {}).get("kata") or []
    found = katadeploy.kata_findings(target, owned)
    fresh = [f for f in found if f not in adopted]
    if fresh and not adopt:
        raise Refused("kata-deploy manages this Kata configuration:\n- %s\n%s"
                      % ("\n- ".join(fresh), katadeploy.ADOPT_HINT
                         % "adopt_kata_deploy (role variable kata_config_adopt_kata_deploy)"), kata_deploy=found)
    if fresh and record is not None:
        ownership.record_adopted(record, "kata", fresh)
    return found


def current_gates(text, kind):
    """{gate: bool or None} of the feature-gate entries in a file of ``kind``."""
    if kind == "auto":
        kind = feature_gates.detect_kind(text, "")
    if kind == "kubelet_config":
        import yaml  # only the feature-gate modules need PyYAML
        data = yaml.safe_load(text) or {}
        gates = data.get("featureGates") or {}
        return {k: v if isinstance(v, bool) else feature_gates.as_bool(v) for k, v in gates.items()}
    if kind == "apiserver_manifest":
        found = feature_gates._flag_lines(text, "--feature-gates")
        items = feature_gates.parse_gate_list(found[0][1].group(2)) if found else []
    else:
        m = re.search(r"--feature-gates[= ]([^\s\"']*)", text)
        items = feature_gates.parse_gate_list(m.group(1)) if m else []
    return {k: feature_gates.as_bool(v) for k, v in items}


def gates_set(before_text, after_text, kind):
    """{gate: value} of the entries the edit added or changed (what uninstall later removes)."""
    before, after = current_gates(before_text, kind), current_gates(after_text, kind)
    return {g: v for g, v in after.items() if v is not None and before.get(g) != v}


class UninstallRun(_Recorded):
    """Kata files and feature gates of the record (kata_uninstall). Each step: (path, before, after)."""

    def __init__(self, record_path, parts):
        super().__init__(record_path)
        self.parts = parts
        self.steps = []
        self.messages = []

    def plan(self):
        rec = self.record
        if "kata_config" in self.parts:
            files = rec.get("kata") or {}
            for path in sorted(files):
                before = fileio.read_text(path)
                if before is not None:
                    self.steps.append((path, before, None))
                    self.messages.append("%s: %s by katafleet, removed" % (path, files[path].get("kind")))
                del files[path]
            (rec.get("adopted") or {}).pop("kata", None)
        if "feature_gates" in self.parts:
            gates = rec.get("feature_gates") or {}
            for path in sorted(gates):
                text = fileio.read_text(path)
                if text is None:
                    del gates[path]
                    continue
                new = text
                for gate, info in sorted(gates[path].items()):
                    current = current_gates(new, info.get("kind") or "auto").get(gate)
                    if current is None or current != info.get("value"):
                        self.messages.append("%s: %s is %s now, not the %s katafleet set: left alone"
                                             % (path, gate, current, info.get("value")))
                        continue
                    version = feature_gates.parse_version(info.get("kubernetes_version"))
                    _kind, new, msgs = feature_gates.plan(new, path, {gate: bool(info["value"])}, version,
                                                          state="absent", kind=info.get("kind") or "auto")
                    self.messages.extend("%s: %s" % (path, m) for m in msgs)
                if new != text:
                    self.steps.append((path, text, new))
                del gates[path]
        return self.steps

    @property
    def changed(self):
        return bool(self.steps) or self.record_changed

    def apply(self, backup_dir=None):
        backups = {}
        for path, before, after in self.steps:
            if backup_dir:
                backups[path] = fileio.backup(path, backup_dir)
            if after is None:
                os.unlink(path)
            else:
                fileio.atomic_write(path, after)
        self.save()
        return backups
