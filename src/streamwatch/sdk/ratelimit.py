"""Small thread-safe helpers for the SDK: rate-limited logging and exact counters.

Rate limiting exists so that a broker outage cannot flood an inference
service's logs. librdkafka's own log lines are held to the same rule by
:class:`streamwatch.adapters.kafka.LibrdkafkaLogFilter` (the adapters cannot
import the SDK, so it keeps its own copy of this logic).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Counter", "RateLimitedLog"]


class RateLimitedLog:
    """Log each kind of message at most once per ``interval`` seconds.

    The next line of a kind says how many of that kind were suppressed.

    >>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
    >>> log = RateLimitedLog(logging.getLogger("doctest"), 10.0, clock=clock)
    >>> [log.warning("x", "broker down") for _ in range(4)]
    [True, False, False, True]
    """

    def __init__(self, logger: logging.Logger, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, Counter] = {}  # by kind, since the logger was made
        self._reported: dict[str, int] = {}  # by kind: how many of those a line has already reported
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``kind`` was logged recently; return whether it was."""
        now = self.clock()
        # Suppressing is what a broker outage does on every event: it takes no lock. A line
        # being written meanwhile may or may not count this one; the next line then does.
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._tally(kind).incr()
            return False
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:  # another thread logged it meanwhile
                self._tally(kind).incr()
                return False
            self._last[kind] = now
            total = self._tally(kind).value()
            suppressed = total - self._reported.get(kind, 0)
            self._reported[kind] = total
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self.logger.warning(message, *args)
        return True

    def _tally(self, kind: str) -> Counter:
        tally = self._suppressed.get(kind)
        if tally is None:
            tally = self._suppressed.setdefault(kind, Counter())  # atomic: two threads get the same one
        return tally


class Counter:
    """A counter that many threads may increment, exactly, without a lock.

    ``incr()`` is one C call (``itertools.count.__next__``), atomic under the
    GIL. Reading advances the same count, so each read subtracts the reads
    before it; reads are rare and take a lock.

    >>> c = Counter()
    >>> _ = c.incr(); _ = c.incr()
    >>> c.value(), c.value()
    (2, 2)
    """

    __slots__ = ("_count", "_lock", "_reads", "incr")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.incr: Callable[[], int] = self._count.__next__
        self._reads = 0
        self._lock = threading.Lock()

    def value(self) -> int:
        with self._lock:
            value = next(self._count) - self._reads
            self._reads += 1
        return value
