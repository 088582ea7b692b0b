"""Durations as Prometheus and Sloth write them: ``500ms``, ``30s``, ``5m``, ``1h``, ``30d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "NonNegativeDuration", "parse_duration"]

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, allow_zero: bool = False) -> timedelta:
    """Parse ``"5m"``, ``"1h"``, ``"30d"``: the notation of Prometheus and Sloth.

    >>> parse_duration("90s"), parse_duration("30d").days, parse_duration("0s", allow_zero=True)
    (datetime.timedelta(seconds=90), 30, datetime.timedelta(0))
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds > 0 or allow_zero:
            return timedelta(seconds=seconds)
    if allow_zero:
        raise ValueError("must be a duration such as 0s, 500ms, 30s, 5m or 1h")
    raise ValueError("must be a positive duration such as 500ms, 30s, 5m, 1h, 30d or 2w")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: A duration that may be zero (``0s``: at once).
NonNegativeDuration = Annotated[timedelta, BeforeValidator(lambda v: parse_duration(v, allow_zero=True))]
