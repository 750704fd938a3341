"""The lab for end-to-end tests: one 3-node lab (v1, v1, v2) per test session, named "pytest" (or
$KATAFLEET_LAB_NAME) so that it never collides with a demo lab or another test run up at the same time."""

import os

import pytest

if os.geteuid() != 0:  # pragma: no cover - CI and the Makefile run as root
    pytest.skip("the lab needs root (network namespaces, cgroups)", allow_module_level=True)

from katafleet_lab.lab import Lab  # noqa: E402

NODES = (("node1", "v1"), ("node2", "v1"), ("node3", "v2"))


@pytest.fixture(scope="session")
def lab():
    lab = Lab(os.environ.get("KATAFLEET_LAB_NAME", "pytest"))
    lab.up(NODES)
    yield lab
    lab.down()
