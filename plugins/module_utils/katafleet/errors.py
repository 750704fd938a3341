"""The one error type katafleet raises for bad input or a refused change."""


class KatafleetError(Exception):
    """A refused change: names the file, the key, the value and the rule that was broken."""

    def __init__(self, message, path=None, key=None, value=None, rule=None):
        self.path = path
        self.key = key
        self.value = value
        self.rule = rule
        parts = []
        if path:
            parts.append(str(path))
        if key is not None:
            parts.append("key %s" % key)
        if value is not None:
            parts.append("value %r" % (value,))
        prefix = ": ".join([", ".join(parts)]) if parts else ""
        text = "%s: %s" % (prefix, message) if prefix else message
        if rule:
            text = "%s (rule: %s)" % (text, rule)
        super().__init__(text)
        self.message = text

    def __str__(self):
        return self.message


def raise_all(errors):
    """Raise one KatafleetError that lists every collected error (so users fix them in one go)."""
    if not errors:
        return
    if len(errors) == 1:
        raise errors[0]
    raise KatafleetError("%d problems:\n- %s" % (len(errors), "\n- ".join(str(e) for e in errors)))
