"""Comment-preserving TOML edits: change only the lines that must change.

tomlkit keeps every byte of what it parsed, so values of keys that exist are set and removed
through it. Two edits are done on the text instead, because tomlkit would place them where a
reader does not expect them:
- a key missing from a table is inserted on its own line right after the commented-out
  ``#key = ...`` line of that table when there is one (Kata <= 3.23 ships many keys only as
  comments), otherwise after the last key line of the table;
- a new table is written as a block after a given sibling table (containerd runtimes) or at the
  end of the file, with the indentation of its neighbours.
Every result is parsed again before it is returned, so an edit can never produce invalid TOML.
"""

import re

try:
    import tomlkit
    from tomlkit.exceptions import ParseError
except ImportError:  # read-only users (the verifier) can work with tomllib alone
    tomlkit = None
    ParseError = ValueError

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

_HEADER = re.compile(r"^(?P<indent>[ \t]*)\[(?!\[)(?P<name>[^\]\n]*(?:\][^\]\n]*)*?)\][ \t]*(?:#.*)?$")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def split_dotted(name):
    """Split a TOML dotted key (``plugins."io.containerd.grpc.v1.cri".containerd``) into parts."""
    parts, buf, i, n = [], "", 0, len(name)
    while i < n:
        c = name[i]
        if c in "\"'":
            end = name.index(c, i + 1)
            buf += name[i + 1:end]
            i = end + 1
        elif c == ".":
            parts.append(buf.strip())
            buf = ""
            i += 1
        else:
            buf += c
            i += 1
    parts.append(buf.strip())
    return tuple(parts)


def join_dotted(parts, quote='"'):
    """Render a table path, quoting the parts that need it in the file's own quote style."""
    return ".".join(p if _BARE.match(p) else "%s%s%s" % (quote, p, quote) for p in parts)


def parse(text, path):
    """Parse TOML with tomlkit; a syntax error names the file and the line."""
    if tomlkit is None:
        raise KatafleetError("the Python library tomlkit is not installed on this node (role kata_prereqs installs it)",
                             path=path, rule="tomlkit needed to edit TOML")
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise KatafleetError(
            "not valid TOML at line %s, column %s: %s; the file was left untouched"
            % (exc.line, exc.col, str(exc).split(" at line", maxsplit=1)[0]),
            path=path,
        )


def headers(text):
    """[(line_index, indent, table_path_tuple)] for every ``[table]`` header line."""
    out = []
    in_multiline = False
    for idx, line in enumerate(text.splitlines()):
        # skip header-looking lines inside multi-line strings
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            in_multiline = not in_multiline
            continue
        if in_multiline:
            continue
        m = _HEADER.match(line)
        if m:
            out.append((idx, m.group("indent"), split_dotted(m.group("name"))))
    return out


def table_span(text, table):
    """(header_index, end_index_exclusive) of the table's own lines, or None."""
    hs = headers(text)
    nlines = len(text.splitlines())
    for i, (idx, _indent, name) in enumerate(hs):
        if name == tuple(table):
            end = hs[i + 1][0] if i + 1 < len(hs) else nlines
            return idx, end
    return None


def get_table(doc, table):
    """The tomlkit container at ``table`` (tuple), or None."""
    node = doc
    for part in table:
        if not hasattr(node, "get") or part not in node:
            return None
        node = node[part]
    return node if hasattr(node, "get") else None


def _is_key_line(line):
    s = line.strip()
    return bool(s) and not s.startswith("#") and not s.startswith("[")


def _insert_key_text(text, table, key, value):
    """Insert ``key = value`` into an existing table, next to its commented-out twin if any."""
    lines = text.splitlines(True)
    span = table_span(text, table)
    start, end = span
    commented = re.compile(r"^\s*#\s*%s\s*=" % re.escape(key))
    key_indent = None
    anchor = None
    for i in range(start + 1, end):
        if commented.match(lines[i]):
            anchor = i
            break
    last_key = None
    for i in range(start + 1, end):
        if _is_key_line(lines[i]):
            last_key = i
            if key_indent is None:
                key_indent = re.match(r"[ \t]*", lines[i]).group(0)
    if anchor is None:
        anchor = last_key if last_key is not None else start
    if key_indent is None:
        key_indent = ""
    rendered = tomlkit.item(value).as_string()
    new_line = "%s%s = %s\n" % (key_indent, key if _BARE.match(key) else '"%s"' % key, rendered)
    if not lines[anchor].endswith("\n"):
        lines[anchor] += "\n"
    lines.insert(anchor + 1, new_line)
    return "".join(lines)


def render_table(table, items, indent="", key_indent="", quote='"'):
    """Text of a new ``[table]`` block with ``items`` (dict; nested dicts become sub-tables)."""
    out = ["%s[%s]\n" % (indent, join_dotted(table, quote))]
    subs = []
    for key, value in items.items():
        if isinstance(value, dict):
            subs.append((key, value))
            continue
        rendered = tomlkit.item(value).as_string()
        if quote == "'":
            rendered = _single_quote(value, rendered)
        out.append("%s%s = %s\n" % (key_indent, key if _BARE.match(key) else '"%s"' % key, rendered))
    sub_indent = indent + ("  " if indent or key_indent else "")
    for key, value in subs:
        out.append("\n")
        out.append(render_table(tuple(table) + (key,), value, sub_indent, key_indent + ("  " if key_indent else ""), quote))
    return "".join(out)


def _single_quote(value, rendered):
    """Render plain strings (and lists of them) as TOML literal strings, as containerd 2.x does."""
    def one(v):
        if isinstance(v, str) and "'" not in v and "\n" not in v:
            return "'%s'" % v
        return tomlkit.item(v).as_string()

    if isinstance(value, str):
        return one(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(one(v) for v in value) + "]"
    return rendered


def plain(value):
    """A tomlkit item as plain Python (dicts, lists, str, int, float, bool)."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def same_value(current, wanted):
    """Equal and of the same type: TOML ``1`` is not ``true`` and ``1`` is not ``1.0``."""
    current = plain(current)
    if type(current) is not type(wanted):
        return False
    if isinstance(wanted, list):
        return len(current) == len(wanted) and all(same_value(c, w) for c, w in zip(current, wanted))
    return current == wanted


def edit(text, path, sets=(), removes=()):
    """Apply key changes to existing or new tables and return the new text.

    ``sets``: iterable of (table_tuple, key, value); ``removes``: iterable of (table_tuple, key).
    Tables that do not exist yet are appended at the end of the file.
    """
    doc = parse(text, path)
    missing_tables = {}
    for table, key, value in sets:
        node = get_table(doc, table)
        if node is None:
            missing_tables.setdefault(tuple(table), {})[key] = value
        elif key not in node:
            if table_span(text, table) is None:
                # implicit super-table (no header line of its own): set through tomlkit
                continue
            text = _insert_key_text(text, table, key, value)
    doc = parse(text, path)
    for table, key, value in sets:
        node = get_table(doc, table)
        if node is None:
            continue
        if key not in node or not same_value(node[key], value):
            node[key] = value
    for table, key in removes:
        node = get_table(doc, table)
        if node is not None and key in node:
            del node[key]
    text = doc.as_string()
    for table, items in missing_tables.items():
        text = append_table(text, table, items)
    parse(text, path)
    return text


def append_table(text, table, items, after=None, quote='"'):
    """Add a new table block after the table ``after`` and its sub-tables (or at the end)."""
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    indent, key_indent, pos = "", "", len(lines)
    if after is not None:
        hs = headers(text)
        after = tuple(after)
        for i, (idx, ind, name) in enumerate(hs):
            if name == after:
                indent = ind
                span_end = len(lines)
                for idx2, _ind2, name2 in hs[i + 1:]:
                    if name2[: len(after)] != after:
                        span_end = idx2
                        break
                pos = span_end
                for line in lines[idx + 1:span_end]:
                    if _is_key_line(line):
                        key_indent = re.match(r"[ \t]*", line).group(0)
                        break
                break
    # keep one blank line between blocks; drop trailing blank lines before the insertion point
    insert_at = pos
    while insert_at > 0 and lines[insert_at - 1].strip() == "":
        insert_at -= 1
    block = render_table(table, items, indent, key_indent, quote)
    new = lines[:insert_at] + (["\n"] if insert_at > 0 else []) + [block] + (["\n"] if insert_at < len(lines) else []) + lines[pos:]
    return "".join(new)


def remove_table(text, table):
    """Remove the table ``table`` and its sub-tables (the lines from its header to the next
    unrelated header), keeping everything else byte for byte."""
    table = tuple(table)
    lines = text.splitlines(True)
    hs = headers(text)
    keep = [True] * len(lines)
    removing = False
    for i, (idx, _ind, name) in enumerate(hs):
        end = hs[i + 1][0] if i + 1 < len(hs) else len(lines)
        if name[: len(table)] == table:
            for j in range(idx, end):
                keep[j] = False
            removing = True
        elif removing:
            removing = False
    out = "".join(line for line, k in zip(lines, keep) if k)
    return out
