"""Errors that users see, and how pydantic's errors become one line.

Every error a user can cause (a bad event, a bad setting, a bad argument)
derives from :class:`StreamwatchError` so the CLI can print it as a single
line instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["ConfigError", "ContractError", "StreamwatchError", "describe_validation_error", "format_loc"]


class StreamwatchError(Exception):
    """Base of every error caused by user input rather than by a bug."""


class ContractError(StreamwatchError, ValueError):
    """An event breaks the wire contract.

    ``field`` names the offending field (dotted path, ``""`` for the whole
    event) and ``reason`` says what is wrong, without echoing the value: event
    values can carry personal data and must not end up in logs.
    """

    def __init__(self, field: str, reason: str, event_type: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.event_type = event_type
        message = f"{field}: {reason}" if field else reason
        super().__init__(f"{event_type} event: {message}" if event_type else message)


class ConfigError(StreamwatchError, ValueError):
    """A setting, the YAML config file or a CLI argument is invalid."""


# Errors raised by whole-model checks carry the field they concern as a
# "field: reason" prefix, because pydantic gives them no location of their own.
FIELD_PREFIXED_ERRORS = {"value_error", "prediction_missing", "window_order"}
_FIELD_PREFIX = re.compile(r"^((?:[^\s:']|'[^']*')+): (.+)$")


def format_loc(loc: Sequence[int | str], data: Any = None) -> str:
    """Render a pydantic error location as ``rules['drift'].threshold``.

    When ``data`` (the raw input) is given, list items that are mappings with
    a ``name`` are shown by name, so errors point at the rule or channel a
    user wrote rather than at its position.

    >>> format_loc(("features", "age"))
    'features.age'
    >>> format_loc(("rules", 0, "threshold"), {"rules": [{"name": "drift"}]})
    "rules['drift'].threshold"
    """
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            name = None
            if isinstance(node, Sequence) and not isinstance(node, str) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                    name = node["name"]
            else:
                node = None
            out += f"[{name!r}]" if name is not None else f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a bad mapping key
            out += " (the name)"
        else:
            node = node.get(part) if isinstance(node, Mapping) else None
            text = _short(part)
            out += f".{text}" if out else text
    return out


def _short(name: str, limit: int = 40) -> str:
    # Names come from untrusted events: keep messages short and printable.
    text = name if name.isprintable() else repr(name)
    return text if len(text) <= limit else text[:limit] + "…"


def describe_validation_error(exc: ValidationError, data: Any = None, *, skip: int = 0) -> tuple[str, str]:
    """Return ``(field, reason)`` for the first error, noting how many more there are.

    ``skip`` drops leading location parts (the tag of a discriminated union).
    Input values are deliberately left out of the reason.
    """
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    field = format_loc(tuple(first["loc"])[skip:], data)
    reason = first["msg"]
    if first["type"] == "missing":
        reason = "required field is missing"
    elif first["type"] == "extra_forbidden":
        reason = "unknown field (check the spelling)"
    elif first["type"] == "union_tag_invalid" and "ctx" in first:
        field = f"{field}.{first['ctx']['discriminator'].strip(chr(39))}" if field else "type"
        reason = f"unknown value {first['ctx']['tag']!r}; expected {first['ctx']['expected_tags']}"
    elif first["type"] == "string_pattern_mismatch":
        reason = "must be non-empty and contain no control characters"
    elif first["type"] == "too_long" and "ctx" in first:
        reason = f"at most {first['ctx']['max_length']} entries allowed"
    elif first["type"] == "literal_error":
        reason = f"must be {first['ctx']['expected']}" if "ctx" in first else reason
    if reason.startswith("Value error, "):
        reason = reason[len("Value error, ") :]
    if first["type"] in FIELD_PREFIXED_ERRORS and (match := _FIELD_PREFIX.match(reason)):
        field = f"{field}.{match.group(1)}" if field else match.group(1)
        reason = match.group(2)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return field, reason
