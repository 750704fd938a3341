"""pytest setup: import paths for the logic package and the lab, and the `playbook` fixture."""

import pytest

from helpers import run_playbook  # noqa: F401


@pytest.fixture
def playbook(tmp_path):
    def _run(tasks, **kw):
        return run_playbook(tmp_path, tasks, **kw)
    return _run
