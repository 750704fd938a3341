"""A minimal JSON stdout callback for the tests (ansible.posix's json callback is not in ansible-core).

Prints {"plays": [{"tasks": [{"task": {"name"}, "hosts": {host: result}}]}], "stats": {...}}.
"""

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: test_json
    type: stdout
    short_description: JSON results for katafleet's tests
    description: Collects every task result and prints one JSON document at the end.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "test_json"

    def __init__(self):
        super().__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result, **extra):
        res = dict(result._result)
        res.update(extra)
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = res

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        out = {"plays": self.plays, "stats": {h: stats.summarize(h) for h in sorted(stats.processed)}}
        self._display.display(json.dumps(out, default=str))
