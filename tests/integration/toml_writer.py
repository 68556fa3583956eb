"""Python values rendered as TOML 1.0: how the integration harness writes its config files.

    text = dumps({"milter": {"socket": "unix:/run/m.sock", "user": "nobody"},
                  "tracking_key": [{"id": "k1", "secret": "c2VjcmV0"}]})
    write(path, doc, mode=0o600)

Values: str, int, float, bool, lists and tuples (arrays), dicts (tables). In each table the keys
with plain values come first, then every dict value as a [table] section and every non-empty list
of dicts as [[array of tables]] sections, in insertion order. A dict inside an array that is not
all dicts is an inline table { k = v }. Keys that are None are left out (TOML has no null).
Keys that are not bare (A-Za-z0-9_-) are quoted; strings are basic strings with TOML's escapes.

set_dotted(), merge() and as_dict() build documents from {"table.key": value} settings, partial
dicts and TOML text.
"""

from __future__ import annotations

import copy
import math
import os
import re
import tomllib

__all__ = ["dumps", "write", "value", "string", "key", "set_dotted", "merge", "as_dict"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def string(s: str) -> str:
    """s as a TOML basic string: quote, backslash and control characters escaped."""
    out = []
    for ch in s:
        c = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif c < 0x20 or c == 0x7F:
            out.append(f"\\u{c:04X}")
        elif 0xD800 <= c <= 0xDFFF:
            raise ValueError(f"lone surrogate in {s!r}: not representable in TOML")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key(k: str) -> str:
    """A key as written left of '=' or in a [header]: bare if it can be, else quoted."""
    if not isinstance(k, str):
        raise TypeError(f"TOML keys are strings, not {type(k).__name__}: {k!r}")
    return k if _BARE_KEY.match(k) else string(k)


def _is_table_array(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def value(v) -> str:
    """A value as written right of '=' (dicts as inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # '1.5', '1e+20': both TOML floats
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        if any(x is None for x in v):
            raise ValueError(f"None inside an array: {v!r}")
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = [f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"no TOML for {type(v).__name__}: {v!r}")


def _table(out: list[str], path: list[str], table: dict, header: str | None) -> None:
    plain = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, dict)
             and not _is_table_array(v)]
    subtables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    # A table holding only tables is defined by its sub-tables' headers: no empty [header].
    if header is not None and (plain or not (subtables or arrays) or header.startswith("[[")):
        if out:
            out.append("")
        out.append(header)
    out.extend(f"{key(k)} = {value(v)}" for k, v in plain)
    for k, v in subtables:
        sub = path + [k]
        _table(out, sub, v, "[" + ".".join(map(key, sub)) + "]")
    for k, items in arrays:
        sub = path + [k]
        for item in items:
            _table(out, sub, item, "[[" + ".".join(map(key, sub)) + "]]")


def dumps(doc: dict, comment: str | None = None) -> str:
    """The document as TOML text (ends in a newline); comment: '# ' lines put first."""
    if not isinstance(doc, dict):
        raise TypeError("a TOML document is a dict")
    out: list[str] = [f"# {line}".rstrip() for line in comment.splitlines()] if comment else []
    _table(out, [], doc, None)
    return "\n".join(out) + "\n"


def write(path: str, doc: dict, mode: int = 0o644, comment: str | None = None) -> None:
    """dumps(doc) written to path with the given mode."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(doc, comment))
    os.chmod(path, mode)


def set_dotted(doc: dict, dotted: str, v) -> None:
    """doc["a"]["b"]["c"] = v for dotted "a.b.c", making the tables on the way; v None removes it."""
    *tables, last = dotted.split(".")
    for name in tables:
        nxt = doc.get(name)
        if not isinstance(nxt, dict):
            if v is None:
                return
            nxt = doc[name] = {}
        doc = nxt
    if v is None:
        doc.pop(last, None)
    else:
        doc[last] = v


def merge(base: dict, extra: dict) -> dict:
    """base updated in place with extra, tables merged key by key (other values replaced)."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def as_dict(toml) -> dict:
    """A document given as a dict (deep copy) or as TOML text (parsed with tomllib)."""
    return copy.deepcopy(toml) if isinstance(toml, dict) else tomllib.loads(toml)
