"""The wall clock, read in one place: only the worker, the SDK, the adapters and the CLI may import this.

The core, the pipeline and the alerting never read a clock (an import-linter
contract checks it): their time comes from events, or is passed in as a value
read here. Converting between epoch milliseconds, datetimes and RFC 3339 text
is pure, and lives in :mod:`streamwatch.contract.timestamps`.
"""

from __future__ import annotations

import time

__all__ = ["monotonic_s", "now_ms", "now_s"]


def now_s() -> float:
    """Seconds since the epoch, as a float (wall clock)."""
    return time.time()


def now_ms() -> int:
    """Milliseconds since the epoch, as an int (wall clock): the unit of event time."""
    return time.time_ns() // 1_000_000


def monotonic_s() -> float:
    """A monotonic clock in seconds, for durations and deadlines; never for event time."""
    return time.monotonic()
