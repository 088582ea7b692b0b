"""Durations as Prometheus and Sloth write them: ``500ms``, ``30s``, ``5m``, ``1h``, ``30d``, ``2w``.

Every duration is at most :data:`MAX_DURATION` (``3650d``, ten years): longer
ones are a typo, and would overflow ``timedelta`` and the date arithmetic done
with it (``99999999999999d`` must be a one-line error, not an ``OverflowError``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["MAX_DURATION", "Duration", "NonNegativeDuration", "parse_duration"]

#: The longest duration a setting may have: ten years.
MAX_DURATION = timedelta(days=3650)
_TOO_LONG = "must be at most 3650d (10 years)"
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# More digits than this exceed MAX_DURATION in any unit (and int() refuses 4300+ digits).
_MAX_DIGITS = 20


def parse_duration(value: Any, allow_zero: bool = False) -> timedelta:
    """Parse ``"5m"``, ``"1h"``, ``"30d"``: the notation of Prometheus and Sloth.

    >>> parse_duration("90s"), parse_duration("30d").days, parse_duration("0s", allow_zero=True)
    (datetime.timedelta(seconds=90), 30, datetime.timedelta(0))
    >>> parse_duration("99999999999999d")
    Traceback (most recent call last):
    ...
    ValueError: must be at most 3650d (10 years)
    """
    if isinstance(value, timedelta):
        if value > MAX_DURATION:
            raise ValueError(_TOO_LONG)
        return value
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        digits = match.group(1).lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            raise ValueError(_TOO_LONG)
        seconds = int(digits) * _UNITS[match.group(2)]
        if seconds > MAX_DURATION.total_seconds():
            raise ValueError(_TOO_LONG)
        if seconds > 0 or allow_zero:
            return timedelta(seconds=seconds)
    if allow_zero:
        raise ValueError("must be a duration such as 0s, 500ms, 30s, 5m or 1h")
    raise ValueError("must be a positive duration such as 500ms, 30s, 5m, 1h, 30d or 2w")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: A duration that may be zero (``0s``: at once).
NonNegativeDuration = Annotated[timedelta, BeforeValidator(lambda v: parse_duration(v, allow_zero=True))]
