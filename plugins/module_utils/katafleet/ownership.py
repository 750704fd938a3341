"""The per-node ownership record: exactly what katafleet created or changed on this node, so that an
uninstall removes exactly that and a rollout removes what the inventory no longer lists (reconcile).

One JSON file per node (default ``/var/lib/katafleet/owned.json``, outside every directory a daemon
loads), written atomically by fileio. The modules that change files update their own section after a
successful write; nothing else writes it. Format 1::

    {"format": 1, "managed_by": "katafleet",
     "containerd": {"<config.toml path>": {
         "handlers": {"<name>": {"before": null | {<the stanza that was there before katafleet changed it>}}},
         "added_runtimes": ["runc"],        # stanzas katafleet had to add (CRI's default runtime)
         "created": null | {"digest": ".."},  # katafleet created the file from `containerd config default`
         "dropin": null | "<path>",          # the drop-in katafleet owns (containerd 2.x)
         "imports_added": ["<path>"]}},      # the `imports` entries katafleet added
     "kata": {"<path>": {"kind": "created" | "dropin", "source": "<copied from>"}},
     "feature_gates": {"<path>": {"<gate>": {"value": true, "kubernetes_version": "1.17", "kind": ".."}}},
     "adopted": {"<area>": ["<kata-deploy finding taken over>", ...]}}

A section that becomes empty is dropped; when nothing is owned any more the file is deleted, so that a
completed uninstall leaves no katafleet state behind (and a second uninstall changes nothing).
"""

import copy
import hashlib
import json
import os

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

DEFAULT_PATH = "/var/lib/katafleet/owned.json"
FORMAT = 1
SECTIONS = ("containerd", "kata", "feature_gates", "adopted")


def empty():
    return {"format": FORMAT, "managed_by": "katafleet"}


def load(path):
    """The record at ``path`` (an empty one when the file does not exist)."""
    text = fileio.read_text(path)
    if text is None:
        return empty()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KatafleetError("the ownership record is not valid JSON (%s); katafleet cannot tell what it owns on this "
                             "node, so it changes nothing: fix or remove the file" % exc, path=path,
                             rule="readable ownership record")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KatafleetError("unknown ownership record format %r (this katafleet reads format %d)"
                             % (data.get("format") if isinstance(data, dict) else data, FORMAT), path=path,
                             rule="ownership record format")
    return data


def prune(record):
    """Drop empty entries and sections (in place); returns the record."""
    for section in SECTIONS:
        value = record.get(section)
        if isinstance(value, dict):
            for key in [k for k, v in value.items() if v in ({}, [], None)]:
                del value[key]
            if section == "containerd":
                for key in list(value):
                    entry = value[key]
                    if not (entry.get("handlers") or entry.get("added_runtimes") or entry.get("dropin")
                            or entry.get("imports_added")):
                        del value[key]
        if not record.get(section):
            record.pop(section, None)
    return record


def is_empty(record):
    return not any(record.get(s) for s in SECTIONS)


def render(record):
    """The file's text ('' when nothing is owned: the file is then removed)."""
    record = prune(copy.deepcopy(record))
    if is_empty(record):
        return ""
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def save(path, record):
    """Write the record atomically (0600), or remove the file when nothing is owned. Returns True if it changed."""
    text = render(record)
    before = fileio.read_text(path)
    if not text:
        if before is not None:
            os.unlink(path)
            return True
        return False
    if before == text:
        return False
    fileio.atomic_write(path, text, default_mode=0o600)
    return True


def diff(path, before_record, after_record):
    """An Ansible diff dict for the record."""
    return dict(before=render(before_record), after=render(after_record), before_header=path, after_header=path)


def section(record, name):
    return record.setdefault(name, {})


# ---------- containerd ----------

def containerd_entry(record, config_path):
    """The (mutable) entry of one containerd config file."""
    entry = section(record, "containerd").setdefault(config_path, {})
    entry.setdefault("handlers", {})
    entry.setdefault("added_runtimes", [])
    entry.setdefault("created", None)
    entry.setdefault("dropin", None)
    entry.setdefault("imports_added", [])
    return entry


def owned_handlers(record, config_path):
    return sorted(((record.get("containerd") or {}).get(config_path) or {}).get("handlers") or {})


def data_digest(data):
    """Digest of parsed TOML data (key order and formatting do not matter)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# ---------- kata ----------

def kata_files(record):
    return dict(record.get("kata") or {})


def record_kata_file(record, path, kind, source=None):
    files = section(record, "kata")
    if path not in files:
        files[path] = {"kind": kind, "source": source}


# ---------- feature gates ----------

def record_gate(record, path, gate, value, version, kind):
    section(record, "feature_gates").setdefault(path, {})[gate] = {
        "value": value, "kubernetes_version": version, "kind": kind}


def forget_gate(record, path, gate):
    gates = (record.get("feature_gates") or {}).get(path)
    if gates:
        gates.pop(gate, None)


def record_adopted(record, area, findings):
    if findings:
        have = section(record, "adopted").setdefault(area, [])
        have.extend(f for f in findings if f not in have)
