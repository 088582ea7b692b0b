"""Merge the partials of many partitions into the partials of the whole stream.

Each partition's :class:`~streamwatch.pipeline.stage.PartitionStage` hands
out partials of its own windows as its own watermark passes them. A window of
the whole stream is complete once *every* partition's watermark has passed it:
then the merger hands out the merge of every partition's partial of that
window (partitions without events in it sent none). Merging is exact, so the
reporter downstream sees the same windows, in the same order per key, as a
single pipeline fed the whole stream; with no event late in either, their
results are equal whatever the number of partitions.

A partition that goes quiet would hold every window open: the runtime, which
may read a clock, marks it idle after a timeout (:meth:`PartialMerger.set_idle`)
and it stops counting until it sends again.

>>> from streamwatch.pipeline.stage import Partial, StageOutput
>>> merger = PartialMerger([0, 1], window_ms=60_000, merge=list.extend)
>>> merger.add(0, StageOutput([Partial("window", ("m", "1", "production"), 0, [1, 2])], watermark=70_000))
>>> merger.release()  # partition 1 has not passed the window yet
[]
>>> merger.add(1, StageOutput([Partial("window", ("m", "1", "production"), 0, [3])], watermark=65_000))
>>> [(p.start, p.aggregate) for p in merger.release()]
[(0, [1, 2, 3])]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from streamwatch.pipeline.stage import Partial, StageOutput

__all__ = ["PartialMerger"]

_NOT_YET = -(2**62)  # the watermark of a partition that has sent nothing


class PartialMerger:
    """Partials of several partitions in, complete partials of the whole stream out.

    A partition's partial of a window replaces any earlier one it sent for that
    window: a stage that restarted from a checkpoint sends some again, and a
    performance partial grows as labels come. A partial for a window already
    released is counted in ``late_partials`` and dropped.

    Parameters
    ----------
    partitions
        Every partition of the input (all of them, not just those seen so far).
    window_ms
        The stages' window length.
    merge
        How to merge a partial into another; by default the aggregate's own ``merge``.
    """

    def __init__(
        self, partitions: Iterable[Hashable], window_ms: int, merge: Callable[[Any, Any], None] | None = None
    ) -> None:
        self.window_ms = window_ms
        self.merge = merge
        self.late_partials = 0
        self._watermarks: dict[Hashable, int] = dict.fromkeys(partitions, _NOT_YET)
        self._idle: set[Hashable] = set()
        self._parts: dict[tuple[str, Any, int], dict[Hashable, Any]] = {}
        self._touched: set[tuple[Any, int]] = set()  # performance slots with news
        self._released = _NOT_YET

    @property
    def watermark(self) -> int:
        """Event time up to which every window of the whole stream is complete."""
        live = [w for p, w in self._watermarks.items() if p not in self._idle]
        return min(live) if live else max(self._watermarks.values(), default=_NOT_YET)

    def set_idle(self, partition: Hashable, idle: bool = True) -> None:
        """Leave a quiet partition out of the watermark (or count it again)."""
        (self._idle.add if idle else self._idle.discard)(partition)

    def add(self, partition: Hashable, output: StageOutput) -> None:
        """Take one stage output of ``partition``: its partials and its watermark."""
        if partition not in self._watermarks:
            raise KeyError(f"unknown partition {partition!r}")
        self._idle.discard(partition)
        self._watermarks[partition] = max(self._watermarks[partition], output.watermark)
        for partial in output.partials:
            slot = (partial.kind, partial.key, partial.start)
            if partial.kind == "performance":
                # The stage keeps updating its aggregates: keep a snapshot.
                self._parts.setdefault(slot, {})[partition] = copy.deepcopy(partial.aggregate)
                self._touched.add((partial.key, partial.start))
            elif partial.start + self.window_ms <= self._released:
                self.late_partials += 1
            else:
                self._parts.setdefault(slot, {})[partition] = partial.aggregate

    def release(self) -> list[Partial]:
        """The merged partials of every window now complete, in the order a reporter wants them."""
        watermark = self.watermark
        ready = sorted(
            (s for s in self._parts if s[0] != "performance" and s[2] + self.window_ms <= watermark),
            key=lambda s: (s[2], str(s[1])),
        )
        self._released = max(self._released, watermark)
        out = [
            Partial("divergence", key, start, self._merged(kind, key, start))
            for kind, key, start in ready
            if kind == "divergence"
        ]
        windows = [(key, start) for kind, key, start in ready if kind == "window"]
        if self._touched:  # the stages already send these only now and then
            for key, start in sorted(self._touched, key=lambda s: (s[1], str(s[0]))):
                parts = list(self._parts[("performance", key, start)].values())
                total = copy.deepcopy(parts[0])
                for part in parts[1:]:
                    self._merge(total, part)
                out.append(Partial("performance", key, start, total))
            self._touched.clear()
        out += [Partial("window", key, start, self._merged("window", key, start)) for key, start in windows]
        return out

    def _merged(self, kind: str, key: Any, start: int) -> Any:
        parts = list(self._parts.pop((kind, key, start)).values())
        total = parts[0]
        for part in parts[1:]:
            self._merge(total, part)
        return total

    def forget_before(self, start_ms: int) -> None:
        """Drop performance snapshots of prediction windows no label can reach any more."""
        for slot in [s for s in self._parts if s[0] == "performance" and s[2] < start_ms]:
            del self._parts[slot]
            self._touched.discard(slot[1:])

    def _merge(self, mine: Any, theirs: Any) -> None:
        if self.merge is not None:
            self.merge(mine, theirs)
        else:
            mine.merge(theirs)
