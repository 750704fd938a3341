"""katafleet logic: plain Python shared by the Ansible modules, the CLI and the tests.

Ansible ships this package to managed nodes as ``ansible.module_utils.katafleet``; pip installs the
same directory as the ``katafleet`` package. Modules inside it import each other relatively.
"""
