# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: unknown_variables
short_description: The variable names a role does not know, each with the closest known name
version_added: "0.2.0"
author: katafleet contributors (@katafleet)
description:
  - Takes the names of the variables that carry a role's prefix (for example what the
    P(ansible.builtin.varnames#lookup) lookup returns for C(^kata_config_)) and returns those that are not among
    the role's known variables, sorted, each followed by the closest known name when one is close enough.
  - A role's argument spec checks only the names it declares, so a misspelt variable
    (C(kata_config_defualt_memory) in group_vars) would be ignored in silence; the roles' preflight asserts that
    this filter returns nothing.
options:
  _input:
    description: Variable names to check.
    type: list
    elements: str
    required: true
  known:
    description:
      - The names the role knows, as a list; or a dict, counted by its keys (such as the C(options) of an entry
        point in C(meta/argument_specs.yml)); or the whole parsed C(meta/argument_specs.yml), which counts the
        options of all its entry points.
    type: raw
    required: true
  prefix:
    description:
      - The prefix all the names share (C(kata_config_)); names are compared without it, so that the shared prefix
        alone does not make a known name look close.
    type: str
    default: ""
  cutoff:
    description: How close (0..1, as in Python's C(difflib.get_close_matches)) a known name must be to be suggested.
    type: float
    default: 0.6
"""

EXAMPLES = r"""
- name: Every kata_config_* variable is one the role knows
  ansible.builtin.assert:
    that: unknown | length == 0
    fail_msg: "unknown variable(s): {{ unknown | join('; ') }}"
  vars:
    unknown: >-
      {{ lookup('ansible.builtin.varnames', '^kata_config_', wantlist=True)
         | katafleet.kata.unknown_variables(lookup('ansible.builtin.file', role_path ~ '/meta/argument_specs.yml')
                                            | from_yaml, prefix='kata_config_') }}
"""

RETURN = r"""
_value:
  description:
    - One entry per unknown name, sorted; C(NAME (did you mean KNOWN?)) where a known name is close, else C(NAME).
  type: list
  elements: str
"""

import difflib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence


def _strip(name, prefix):
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def unknown_variables(names, known, prefix="", cutoff=0.6):
    if isinstance(names, (str, bytes)) or not is_sequence(names):
        raise AnsibleFilterError("unknown_variables expects a list of variable names, got %r" % (names,))
    if isinstance(known, dict) and isinstance(known.get("argument_specs"), dict):
        known = [name for entry in known["argument_specs"].values() for name in (entry or {}).get("options") or {}]
    elif isinstance(known, dict):
        known = list(known)
    elif isinstance(known, (str, bytes)) or not is_sequence(known):
        raise AnsibleFilterError("unknown_variables expects the known names as a list or dict, got %r" % (known,))
    known = sorted(set(str(k) for k in known))
    by_short = dict((_strip(k, prefix), k) for k in known)
    out = []
    for name in sorted(set(str(n) for n in names)):
        if name in known:
            continue
        close = difflib.get_close_matches(_strip(name, prefix), sorted(by_short), n=1, cutoff=float(cutoff))
        out.append("%s (did you mean %s?)" % (name, by_short[close[0]]) if close else name)
    return out


class FilterModule(object):
    def filters(self):
        return {"unknown_variables": unknown_variables}
