# -*- coding: utf-8 -*-
# Copyright: katafleet contributors
# Apache-2.0 (see LICENSE)
"""The descriptions of the attributes every katafleet module declares; each module sets only ``support``."""


class ModuleDocFragment(object):

    # use as: extends_documentation_fragment: [katafleet.kata.attributes]
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
"""
