"""Time as streamwatch writes it: epoch milliseconds, UTC datetimes and RFC 3339 text, converted in one place.

Event time is an ``int`` of milliseconds since the Unix epoch everywhere in
streamwatch. This module converts it, and is pure: reading the wall clock is
:mod:`streamwatch.clock`'s job, and the core may not import that.

>>> rfc3339(1763900000000)
'2025-11-23T12:13:20.000Z'
>>> parse_rfc3339("2025-11-23T12:13:20z") == to_datetime(1763900000000)
True
>>> to_ms(parse_rfc3339("2025-11-23T13:13:20.5+01:00"))
1763900000500
>>> duration_ms(timedelta(minutes=5))
300000
>>> parse_rfc3339("2025-11-23T12:13:20")
Traceback (most recent call last):
...
streamwatch.times.MissingOffsetError: RFC 3339 time without a UTC offset: '2025-11-23T12:13:20'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "EPOCH",
    "RFC3339_PATTERN",
    "MissingOffsetError",
    "duration_ms",
    "parse_rfc3339",
    "rfc3339",
    "to_datetime",
    "to_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: RFC 3339 with a mandatory offset ("t", "z" and a space for "T" allowed); the JSON Schema carries it too.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339_PATTERN)


class MissingOffsetError(ValueError):
    """A date-time that would be RFC 3339 but for its missing UTC offset (ambiguous, so refused)."""


def to_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds, exactly (integer arithmetic, no float rounding)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: streamwatch's times carry a UTC offset")
    return (moment - EPOCH) // _MS


def to_datetime(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def rfc3339(epoch_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with milliseconds (``...T12:13:20.000Z``), the export format's time."""
    return to_datetime(epoch_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 text with an offset as an aware UTC datetime; ``ValueError`` for anything else."""
    if not _RFC3339.match(text):
        if _RFC3339.match(text + "Z"):
            raise MissingOffsetError(f"RFC 3339 time without a UTC offset: {text!r}")
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return datetime.fromisoformat(text.upper()).astimezone(UTC)  # RFC 3339 allows "t" and "z"; month 13 raises


def duration_ms(duration: timedelta) -> int:
    """A duration in whole milliseconds."""
    return duration // _MS
