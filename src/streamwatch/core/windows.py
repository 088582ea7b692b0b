"""Event-time tumbling windows with a watermark and allowed lateness.

Time comes from the events: the watermark is the largest event time seen
minus the allowed lateness, and a window ``[start, start + size)`` closes once
the watermark reaches its end. An event whose window has already closed is
*late*: it is counted and handed back to the caller, never silently dropped.

Whether an event is late does not depend on how the stream was cut into
batches: within a batch each event is judged against the watermark as it stood
just before that event, exactly as if events came one at a time.

One clock gone wrong must not close every window at once. With ``max_lead_ms``, an
event more than that ahead of the largest event time confirmed so far is counted in
its own window, but moves the watermark only once the next event agrees that time
has come that far (it is no more than ``max_lead_ms`` behind it); a partition's
first event waits for its second the same way. A single event
dated hours ahead (local time sent as UTC) then leaves the watermark where the rest
of the stream has it, while a stream that really jumps (traffic resuming after a
quiet night) moves on at its second event. The rule reads events one by one, so it
does not depend on batching either.

>>> windows = TumblingWindows(60_000, 10_000, factory=lambda key: [], max_lead_ms=300_000)
>>> windows.route(np.array([5_000, 9 * 3_600_000, 20_000, 30_000])).late.tolist()
[False, False, False, False]
>>> windows.watermark, windows.leaps  # the leap waits for an event that confirms it
(20000, 1)
>>> windows.route(np.array([9 * 3_600_000 + 1_000])).late.tolist(), windows.watermark
([False], 32391000)

A partition that goes quiet would hold its windows open forever; the caller
(which may read a clock, unlike the core) advances the watermark with
:meth:`TumblingWindows.advance_to` after an idle timeout.

>>> windows = TumblingWindows(size_ms=60_000, allowed_lateness_ms=10_000, factory=lambda key: [])
>>> batch = windows.route(np.array([5_000, 61_000, 65_000, 30_000]))
>>> batch.starts.tolist(), batch.late.tolist()
([0, 60000, 60000, 0], [False, False, False, False])
>>> windows.window("credit-risk", 0).extend([5_000, 30_000])
>>> windows.close_ready()  # the watermark (55 s) has not reached the window's end
[]
>>> _ = windows.route(np.array([75_000]))
>>> [(w.key, w.start, w.end, w.aggregate) for w in windows.close_ready()]
[('credit-risk', 0, 60000, [5000, 30000])]
>>> windows.route(np.array([1_000])).late.tolist(), windows.late_events
([True], 1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

__all__ = ["ClosedWindow", "RoutedBatch", "SlidingMerge", "TumblingWindows", "merged"]

A = TypeVar("A")
NO_EVENT = np.iinfo(np.int64).min // 2


@dataclass(frozen=True, slots=True)
class RoutedBatch:
    """Where each event of a batch belongs: its window's start, and whether it came too late."""

    starts: np.ndarray
    late: np.ndarray


@dataclass(frozen=True, slots=True)
class ClosedWindow(Generic[A]):
    key: Hashable
    start: int
    end: int
    aggregate: A


class TumblingWindows(Generic[A]):
    """Open windows per key, each holding an aggregate made by ``factory``.

    Parameters
    ----------
    size_ms
        Window length in milliseconds (default one minute).
    allowed_lateness_ms
        How far behind the largest event time an event may be and still count.
    factory
        Makes an empty aggregate for a new window of the key it is given.
    max_lead_ms
        How far ahead of the stream an event may move the watermark on its own (see above);
        ``None`` for any.
    """

    def __init__(
        self,
        size_ms: int = 60_000,
        allowed_lateness_ms: int = 0,
        *,
        factory: Callable[[Hashable], A],
        max_lead_ms: int | None = None,
    ) -> None:
        if size_ms <= 0 or allowed_lateness_ms < 0 or (max_lead_ms is not None and max_lead_ms < 0):
            raise ValueError("size_ms must be positive, allowed_lateness_ms and max_lead_ms not negative")
        self.size_ms = size_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.factory = factory
        self.max_lead_ms = max_lead_ms
        self.leaps = 0  # events that leapt more than max_lead_ms ahead, held back until confirmed (a counter)
        self._lead: int | None = None  # the event time of a leap awaiting its confirmation
        self._max_event_time = NO_EVENT
        self._open: dict[tuple[Hashable, int], A] = {}
        self._late = 0

    @property
    def watermark(self) -> int:
        """Event time up to which every window is complete."""
        return self._max_event_time - self.allowed_lateness_ms

    @property
    def late_events(self) -> int:
        """Events so far that arrived after their window closed."""
        return self._late

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def route(self, timestamps_ms: np.ndarray) -> RoutedBatch:
        """Assign a batch of event times (epoch ms) to windows and advance the watermark."""
        times = np.asarray(timestamps_ms, dtype=np.int64)
        starts = times - times % self.size_ms
        if times.size == 0:
            return RoutedBatch(starts, np.zeros(0, dtype=bool))
        seen_before = np.empty_like(times)
        seen_before[0] = self._max_event_time
        np.maximum.accumulate(times[:-1], out=seen_before[1:])
        np.maximum(seen_before, self._max_event_time, out=seen_before)
        lead = self.max_lead_ms
        if lead is not None and (self._lead is not None or bool((times > seen_before + lead).any())):
            # Some event leaps ahead (rare): judge the batch one event at a time.
            seen_before = self._seen_with_leads(times, lead)
        else:
            self._max_event_time = max(self._max_event_time, int(times.max()))
        late = starts + self.size_ms <= seen_before - self.allowed_lateness_ms
        self._late += int(late.sum())
        return RoutedBatch(starts, late)

    def _seen_with_leads(self, times: np.ndarray, lead: int) -> np.ndarray:
        """The largest confirmed event time before each event, a leap counting once the next event confirms it."""
        seen = np.empty_like(times)
        top, pending = self._max_event_time, self._lead
        for i, t in enumerate(times.tolist()):
            seen[i] = top
            if pending is not None and t >= pending - lead:  # the stream has come that far: the leap was real
                if t <= pending + lead:
                    top, pending = max(top, pending, t), None
                    continue
                top = max(top, pending)  # ... and this event leaps further still
            elif t <= top + lead:
                top = max(top, t)
                continue
            if top != NO_EVENT:  # (a partition's first event waits for the second like any leap)
                self.leaps += 1
            pending = t
        self._max_event_time, self._lead = top, pending
        return seen

    def advance_to(self, event_time_ms: int) -> None:
        """Move time forward without an event, e.g. when a partition has been idle too long."""
        self._max_event_time = max(self._max_event_time, event_time_ms)

    def window(self, key: Hashable, start: int) -> A:
        """The aggregate of ``key``'s window starting at ``start``, made on first use."""
        slot = (key, int(start))
        aggregate = self._open.get(slot)
        if aggregate is None:
            aggregate = self._open[slot] = self.factory(key)
        return aggregate

    def close_ready(self) -> list[ClosedWindow[A]]:
        """Remove and return every window the watermark has passed, oldest first."""
        watermark = self.watermark
        ready = sorted(
            (slot for slot in self._open if slot[1] + self.size_ms <= watermark), key=lambda s: (s[1], str(s[0]))
        )
        return [ClosedWindow(key, start, start + self.size_ms, self._open.pop((key, start))) for key, start in ready]


def merged(partials: Sequence[A], merge: Callable[[A, A], None], copy: Callable[[A], A]) -> A:
    """One aggregate from several (a rolling view over the last K windows, or many partitions).

    The first partial is copied, so the inputs are left as they were.

    >>> merged([[1], [2, 3]], list.extend, list.copy)
    [1, 2, 3]
    """
    if not partials:
        raise ValueError("nothing to merge")
    total = copy(partials[0])
    for partial in partials[1:]:
        merge(total, partial)
    return total


class SlidingMerge(Generic[A]):
    """The merge of the items of a sliding window, in amortised O(1) merges per step.

    A rolling view over the last K windows re-merged at every window costs K merges; this keeps
    two stacks instead (the "two-stacks" sliding-window aggregation): the newest items merged into
    one running aggregate, and, for the oldest ones, the merge of each with everything after it
    among them. Adding an item is one merge, dropping the oldest is a pop, and every K steps the
    running items are turned into suffix merges (K copies and merges): about three merges per
    step, whatever K. ``merge`` must be associative and commutative, as every aggregate's is (they
    merge exactly across partitions), so the result equals :func:`merged` of the items.

    The aggregate returned is shared with the structure: read it, do not change it.

    >>> window = SlidingMerge(list.extend, list.copy)
    >>> for at in range(5):
    ...     window.push(at, [at])
    >>> window.drop_before(2)
    >>> sorted(window.value())
    [2, 3, 4]
    >>> window.push(5, [5]); window.drop_before(4); sorted(window.value())
    [4, 5]
    """

    def __init__(self, merge: Callable[[A, A], None], copy: Callable[[A], A]) -> None:
        self._merge = merge
        self._copy = copy
        self._items: deque[tuple[int, A]] = deque()
        self._front: list[A] = []  # _front[-1] merges the oldest item and every later one of the front part
        self._back: A | None = None  # the items after the front part, merged
        self._nback = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, at: int, item: A) -> None:
        """Add the newest item (``at`` orders items, e.g. a window's start)."""
        self._items.append((at, item))
        if self._back is None:
            self._back = self._copy(item)
        else:
            self._merge(self._back, item)
        self._nback += 1

    def drop_before(self, at: int) -> None:
        """Drop the items older than ``at``."""
        while self._items and self._items[0][0] < at:
            if not self._front:
                self._flip()
            self._items.popleft()
            self._front.pop()

    def _flip(self) -> None:
        """Turn the running items into suffix merges, newest first."""
        running = [item for _, item in list(self._items)[len(self._items) - self._nback :]]
        suffix: A | None = None
        for item in reversed(running):
            merged_item = self._copy(item)
            if suffix is not None:
                self._merge(merged_item, suffix)
            self._front.append(merged_item)
            suffix = merged_item
        self._back, self._nback = None, 0

    def value(self) -> A:
        """The merge of every item kept (shared: do not change it)."""
        if not self._items:
            raise ValueError("nothing to merge")
        if not self._front:
            assert self._back is not None
            return self._back
        if self._back is None:
            return self._front[-1]
        total = self._copy(self._front[-1])
        self._merge(total, self._back)
        return total
