#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: kata_uninstall
short_description: Remove the Kata files and feature gates that the node's ownership record lists
description:
  - Reads the node's ownership record (written by M(katafleet.kata.kata_config) and
    M(katafleet.kata.kata_feature_gates)) and removes exactly what it lists; containerd's part is removed by
    M(katafleet.kata.kata_containerd) with O(katafleet.kata.kata_containerd#module:state=absent) and no handlers.
  - C(kata_config) part, the Kata config files katafleet created (the C(/etc) copy) and its C(config.d) drop-ins
    are deleted.
  - C(feature_gates) part, every gate entry katafleet set is removed again, where it still has the value
    katafleet set (an entry changed since is left alone, and reported).
  - What is removed leaves the record; a record with nothing left is deleted, so a second run changes nothing.
version_added: "0.2.0"
author: katafleet maintainers (@katafleet)
options:
  ownership:
    description: The node's ownership record.
    type: path
    default: /var/lib/katafleet/owned.json
  parts:
    description: Which parts of the record to remove.
    type: list
    elements: str
    choices: [kata_config, feature_gates]
    default: [kata_config, feature_gates]
  backup_dir:
    description: Copies of the files changed or removed go here.
    type: path
    default: /var/backups/katafleet
extends_documentation_fragment:
  - katafleet.kata.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Remove the Kata files katafleet created
  katafleet.kata.kata_uninstall:
    parts: [kata_config]
"""

RETURN = r"""
removed:
  description: The files deleted.
  returned: always
  type: list
  elements: str
edited:
  description: The files edited (gate entries removed).
  returned: always
  type: list
  elements: str
messages:
  description: What was done or left alone, and why.
  returned: always
  type: list
  elements: str
backups:
  description: Backup copy of each file changed.
  returned: changed
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

try:
    from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import reconcile
    IMPORT_ERROR = None
except ImportError as exc:  # PyYAML or tomlkit missing on the node
    IMPORT_ERROR = exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ownership=dict(type="path", default="/var/lib/katafleet/owned.json"),
            parts=dict(type="list", elements="str", choices=["kata_config", "feature_gates"],
                       default=["kata_config", "feature_gates"]),
            backup_dir=dict(type="path", default="/var/backups/katafleet"),
        ),
        supports_check_mode=True,
    )
    if IMPORT_ERROR is not None:
        module.fail_json(msg="%s (role kata_prereqs installs it)" % IMPORT_ERROR)
    p = module.params
    try:
        run = reconcile.UninstallRun(p["ownership"], p["parts"])
        steps = run.plan()
    except KatafleetError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=run.changed, removed=[s[0] for s in steps if s[2] is None],
                  edited=[s[0] for s in steps if s[2] is not None], messages=run.messages)
    if module._diff:
        diffs = [dict(before=b, after=a or "", before_header=path, after_header=path) for path, b, a in steps]
        if run.record_changed:
            diffs.append(run.record_diff())
        result["diff"] = diffs
    if run.changed and not module.check_mode:
        try:
            result["backups"] = run.apply(backup_dir=p["backup_dir"])
        except OSError as exc:
            module.fail_json(msg="write failed: %s" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
