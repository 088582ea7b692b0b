"""What Grafana and the ClickHouse plugin do to a panel's SQL before ClickHouse sees it, in Python.

The plugin expands its macros (``$__timeFilter_ms``), then hands the SQL to Grafana's template service, which
replaces each ``$name``, ``[[name]]`` or ``${name[:format]}`` with the variable's value in that format. The formats
here follow Grafana's ``formatRegistry``:

- no format: the value as it is;
- ``percentencode``: ``encodeURIComponentStrict``, i.e. JavaScript's ``encodeURIComponent`` (UTF-8, upper-case hex,
  leaving ``A-Z a-z 0-9 - _ . ! ~ * ' ( )``) followed by escaping ``! ' ( ) *`` as well;
- ``sqlstring``: the value in single quotes, ``'`` doubled and ``"`` backslash-escaped (which is why it is no
  protection against ClickHouse, where a backslash escapes the quote after it).

"All" with a custom all value (``allValue``) is that value, unformatted, except under ``percentencode`` (scenes'
``CustomAllValue``, and the legacy template service, both encode it) and ``text`` ("All").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from streamwatch.dashboards.catalog import ALL

ALL_VARIABLE_VALUE = "$__all"  # what Grafana stores as the value of "All"

# encodeURIComponent leaves these alone (ECMA-262 uriUnreserved: alphanumerics and -_.!~*'()).
_JS_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")
# Grafana's template-variable pattern: $name, [[name:format]], ${name.path:format}.
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")
TIME_FILTER_MS = re.compile(r"\$__timeFilter_ms\(([^)]+)\)")


def encode_uri_component(value: str) -> str:
    """JavaScript's ``encodeURIComponent``: every code point outside its unreserved set as UTF-8 ``%XX`` bytes.

    A lone surrogate (which JavaScript rejects with a URIError) fails here too, in ``str.encode``.
    """
    return "".join(c if c in _JS_UNRESERVED else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


def percentencode(value: str) -> str:
    """Grafana's ``percentencode`` format (``encodeURIComponentStrict``)."""
    return re.sub(r"[!'()*]", lambda m: f"%{ord(m.group(0)):X}", encode_uri_component(value))


def sqlstring(value: str) -> str:
    """Grafana's ``sqlstring`` format: quoted, ``'`` doubled, ``"`` escaped with a backslash."""
    return "'" + value.replace("'", "''").replace('"', '\\"') + "'"


FORMATS = {"percentencode": percentencode, "sqlstring": sqlstring, "raw": lambda v: v}


def interpolate(sql: str, values: Mapping[str, str], all_values: Mapping[str, str] | None = None) -> str:
    """``sql`` with every variable replaced as Grafana replaces it; a variable not in ``values`` is left alone
    (as Grafana leaves an unknown one). ``all_values`` holds each variable's custom all value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name not in values:
            return match.group(0)
        fmt = match.group(3) or match.group(6)
        value = values[name]
        if value == ALL_VARIABLE_VALUE:
            value = (all_values or {})[name]
            if fmt == "text":
                return "All"
            if fmt != "percentencode":
                return value
        if fmt is None:
            return value
        if fmt not in FORMATS:
            raise ValueError(f"no such format here: {fmt}")
        return FORMATS[fmt](value)

    return VARIABLE.sub(replace, sql)


def expand(sql: str, database: str, values: Mapping[str, str], start_ms: int, end_ms: int) -> str:
    """What ClickHouse receives: the plugin's time macro, then Grafana's variables (``database`` included)."""
    sql = TIME_FILTER_MS.sub(
        lambda m: (
            f"{m.group(1)} >= fromUnixTimestamp64Milli({start_ms}) AND "
            f"{m.group(1)} <= fromUnixTimestamp64Milli({end_ms})"
        ),
        sql,
    )
    sql = interpolate(sql, {"database": database, **values}, {name: ALL for name in values})
    assert "$" not in sql.replace("${__value.raw}", ""), f"a variable is left: {sql}"
    return sql
