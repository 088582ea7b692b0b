"""What one partition's stream accumulates: the first stage of the pipeline.

A :class:`PartitionStage` decodes batches of raw event bytes, routes them to
event-time windows, joins labels to predictions and pairs canary or shadow
predictions with production's. It judges nothing: it hands out *partials*,
mergeable aggregates of one window, for the :class:`~streamwatch.pipeline.reporter.Reporter`
to judge. In one process the partials go straight to the reporter (see
:class:`~streamwatch.pipeline.pipeline.Pipeline`); a worker running several partitions
merges the partials of every partition first (:mod:`streamwatch.pipeline.merge`),
so that no result depends on how the stream was partitioned.

Events are keyed by ``request_id`` (see the README), so a prediction, its label
and its canary twin meet in the same partition; each stage joins on its own.

Three kinds of partial:

``window``
    A :class:`~streamwatch.pipeline.aggregates.WindowAggregates` of one closed
    window of one model version and variant: final once handed out.
``divergence``
    A :class:`~streamwatch.core.divergence.Divergence` of a challenger against
    production over one window: final once handed out.
``performance``
    The labelled predictions of one prediction window so far (labels come for
    a day): handed out again, whole, each time it changed and event time moved
    past a window. The latest one of a partition replaces its earlier ones.

Partials are live objects, valid until the next call: a caller that keeps one
copies it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from streamwatch.contract.decode import DeadLetter, DecodedBatch, PredictionIn, decode_batch
from streamwatch.core.divergence import Divergence, TwinJoin
from streamwatch.core.join import LabelJoin, Prediction
from streamwatch.core.performance import PerformanceAggregates, RegressionAggregates
from streamwatch.core.windows import TumblingWindows
from streamwatch.pipeline.aggregates import WindowAggregates

__all__ = ["Partial", "PartitionStage", "StageOutput"]

#: Event time far beyond any real one: what flushing moves the watermark to.
END_OF_TIME = 2**62

PartialKind = Literal["window", "divergence", "performance"]


@dataclass(frozen=True, slots=True)
class Partial:
    """A mergeable aggregate of one window.

    ``key`` is ``(model, model_version, variant)``; for divergence it also names
    the production version compared with: ``(model, version, variant, production_version)``.
    """

    kind: PartialKind
    key: tuple[Any, ...]
    start: int
    aggregate: Any


@dataclass
class StageOutput:
    partials: list[Partial] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    late_events: int = 0
    labels_received: int = 0
    labels_matched: int = 0
    #: Event time up to which this stage's windows are complete.
    watermark: int = 0
    #: The batch's good events, for a runtime that stores them raw.
    decoded: DecodedBatch | None = None


class PartitionStage:
    """Windows, label join and twin pairing of one stream in order (a partition, or a replayed file).

    Parameters
    ----------
    window_factory
        Makes the empty aggregates of a new window for a ``(model, version, variant)`` key.
    performance_factory
        Makes the empty performance aggregates of a prediction window for a key.
    window_ms, allowed_lateness_ms, label_horizon_ms
        As for :class:`~streamwatch.pipeline.pipeline.Pipeline`.
    """

    def __init__(
        self,
        window_factory: Callable[[Any], WindowAggregates],
        performance_factory: Callable[[Any], PerformanceAggregates | RegressionAggregates],
        *,
        window_ms: int = 60_000,
        allowed_lateness_ms: int = 10_000,
        label_horizon_ms: int = 86_400_000,
    ) -> None:
        self.window_ms = window_ms
        self.label_horizon_ms = label_horizon_ms
        self.performance_factory = performance_factory
        self.join = LabelJoin(horizon_ms=label_horizon_ms)
        self.twins = TwinJoin()
        self.windows: TumblingWindows[WindowAggregates] = TumblingWindows(
            window_ms, allowed_lateness_ms, factory=window_factory
        )
        self._divergence: dict[tuple[Any, int], Divergence] = {}
        self._performance: dict[tuple[Any, int], PerformanceAggregates | RegressionAggregates] = {}
        self._unreported: set[tuple[Any, int]] = set()

    @property
    def watermark(self) -> int:
        return self.windows.watermark

    def process(self, raws: Sequence[bytes], plausible: Sequence[tuple[int, int]] | None = None) -> StageOutput:
        """Decode a batch, add it to its windows, and hand out the partials it completed.

        ``plausible`` gives, per raw event, the earliest and latest event time to believe (a
        runtime derives them from the Kafka record's own timestamp): an event outside its range
        is a dead letter, so that one clock gone wrong cannot close every window at once.
        """
        batch = decode_batch(raws)
        if plausible is not None:
            _screen_times(batch, plausible)
        out = StageOutput(dead_letters=batch.dead_letters, labels_received=len(batch.labels), decoded=batch)
        # Arrival order within the batch is kept: lateness must not depend on batching.
        events = batch.predictions + batch.features
        matches: list[tuple[str, Prediction, Any]] = []
        if events:
            routed = self.windows.route(np.fromiter((e.timestamp for e in events), np.int64, len(events)))
            out.late_events = int(routed.late.sum())
            groups: dict[tuple[tuple[str, str | None, str], int], list[Any]] = defaultdict(list)
            for event, start, late in zip(events, routed.starts.tolist(), routed.late.tolist(), strict=True):
                if not late:
                    groups[(event.model, event.model_version, event.variant), start].append(event)
            for (key, start), members in groups.items():
                self.windows.window(key, start).update(members)
            for event, late in zip(events, routed.late.tolist(), strict=True):
                if late or not isinstance(event, PredictionIn):
                    continue
                self._pair(event)
                if event.prediction is not None:
                    record = Prediction(
                        event.timestamp,
                        event.model_version,
                        event.variant,
                        event.prediction,
                        event.score,
                        tuple(sorted(event.segments.items())),
                    )
                    model = event.model
                    matches += [
                        (model, p, label) for p, label in self.join.add_prediction(model, event.request_id, record)
                    ]
        for label in batch.labels:
            joined = self.join.add_label(label.model, label.request_id, label.label, label.timestamp)
            matches += [(label.model, prediction, value) for prediction, value in joined]
        out.labels_matched = len(matches)
        self._score(matches)
        self._complete(self.windows.watermark, out)
        return out

    def flush(self) -> StageOutput:
        """Hand out every partial still open (the end of a replayed file)."""
        out = StageOutput()
        self.windows.advance_to(END_OF_TIME)
        self._complete(END_OF_TIME, out, flushing=True)
        return out

    def advance_to(self, event_time_ms: int) -> StageOutput:
        """Move event time on without an event (an idle partition) and hand out what that completed.

        Performance partials with news are handed out too, even if no window closed: on a quiet
        partition, labels may still have come in since event time last moved.
        """
        out = StageOutput()
        self.windows.advance_to(event_time_ms)
        self._complete(self.windows.watermark, out, flushing=True)
        return out

    @property
    def performance_pending(self) -> bool:
        """Whether labels came in that no performance partial has shown yet."""
        return bool(self._unreported)

    def _complete(self, watermark: int, out: StageOutput, flushing: bool = False) -> None:
        # The order matters to a reporter fed directly: divergence, then performance, then windows.
        for slot in sorted((s for s in self._divergence if s[1] + self.window_ms <= watermark), key=_order):
            out.partials.append(Partial("divergence", slot[0], slot[1], self._divergence.pop(slot)))
        self.twins.expire(watermark - self.window_ms)
        self.join.expire(watermark)
        closed = self.windows.close_ready()
        if closed or flushing:
            # Performance is handed out when event time moves past a window, not after every
            # batch: the fairness figures of every touched window are too costly to recompute
            # per batch, and labels keep coming for a day anyway.
            # Only windows event time has left: a window still filling would be judged on a few labels.
            done = [s for s in self._unreported if flushing or s[1] + self.window_ms <= watermark]
            for key, start in sorted(done, key=_order):
                out.partials.append(Partial("performance", key, start, self._performance[key, start]))
            self._unreported.difference_update(done)
        horizon = self.window_ms + self.label_horizon_ms
        for slot in [s for s in self._performance if s[1] + horizon < watermark]:
            del self._performance[slot]
        # The windows are keyed by the (model, version, variant) tuples process() routes by.
        out.partials += [Partial("window", cast(tuple[Any, ...], w.key), w.start, w.aggregate) for w in closed]
        out.watermark = watermark

    def _pair(self, event: Any) -> None:
        """Pair canary and shadow predictions with production's for the same request.

        Every production prediction waits (a window at most) for a twin, even of models
        that never had a canary: skipping them until a model's first canary shows would
        miss pairs depending on when that canary reached each partition, and results
        must not depend on partitioning.
        """
        answer = (event.variant, event.model_version, event.prediction, event.score, event.latency_ms, event.timestamp)
        for production, challenger in self.twins.add_answer(event.model, event.request_id, answer):
            start = production.timestamp_ms - production.timestamp_ms % self.window_ms
            slot = ((event.model, challenger.version, challenger.variant, production.version), start)
            divergence = self._divergence.get(slot)
            if divergence is None:
                divergence = self._divergence[slot] = Divergence()
            divergence.update([(production, challenger)])

    def _score(self, matches: list[tuple[Any, Prediction, Any]]) -> None:
        """Add joined labels to their prediction windows."""
        touched: dict[tuple[Any, int], list[tuple[Prediction, Any]]] = defaultdict(list)
        for model, prediction, label in matches:
            key = (model, prediction.model_version, prediction.variant)
            touched[key, prediction.timestamp_ms - prediction.timestamp_ms % self.window_ms].append((prediction, label))
        for slot, pairs in touched.items():
            aggregates = self._performance.get(slot)
            if aggregates is None:
                aggregates = self._performance[slot] = self.performance_factory(slot[0])
            aggregates.update(pairs)
            self._unreported.add(slot)

    def open_windows(self) -> dict[tuple[Any, int], WindowAggregates]:
        """The windows still open, by (key, start)."""
        return dict(self.windows._open)

    def state(self) -> dict[str, Any]:
        """Everything this stage has accumulated, for a checkpoint (see :meth:`restore`)."""
        windows = self.windows
        return {
            "open": windows._open,
            "max_event_time": windows._max_event_time,
            "late": windows._late,
            "join": self.join,
            "twins": self.twins,
            "divergence": self._divergence,
            "performance": self._performance,
            "unreported": self._unreported,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpointed :meth:`state`, as if the events before it had just been processed."""
        self.windows._open = state["open"]
        self.windows._max_event_time = state["max_event_time"]
        self.windows._late = state["late"]
        self.join = state["join"]
        self.twins = state["twins"]
        self._divergence = state["divergence"]
        self._performance = state["performance"]
        self._unreported = state["unreported"]


def _screen_times(batch: DecodedBatch, plausible: Sequence[tuple[int, int]]) -> None:
    """Move events whose time is outside their plausible range to the dead letters."""
    streams: tuple[tuple[str, list[Any]], ...] = (
        ("prediction", batch.predictions),
        ("feature", batch.features),
        ("label", batch.labels),
    )
    for kind, events in streams:
        positions = batch.positions[kind]
        keep = [
            i
            for i, (event, at) in enumerate(zip(events, positions, strict=True))
            if plausible[at][0] <= event.timestamp <= plausible[at][1]
        ]
        if len(keep) == len(events):
            continue
        for i in sorted(set(range(len(events))) - set(keep)):
            _, high = plausible[positions[i]]
            side = "future" if events[i].timestamp > high else "past"
            batch.dead_letters.append(
                DeadLetter(positions[i], f"{kind} event: timestamp: too far in the {side} of when it was published")
            )
        events[:] = [events[i] for i in keep]
        positions[:] = [positions[i] for i in keep]
    batch.dead_letters.sort(key=lambda d: d.index)


def _order(slot: tuple[Any, int]) -> tuple[int, str]:
    return slot[1], str(slot[0])


def performance_factory(
    tasks: Mapping[str, str], positive_label: Callable[[Any], str], slices: Callable[[Any], list[list[str]]]
) -> Callable[[Any], PerformanceAggregates | RegressionAggregates]:
    """The performance aggregates a key's prediction windows start from: regression or classification."""

    def make(key: Any) -> PerformanceAggregates | RegressionAggregates:
        if tasks.get(key[0]) == "regression":
            return RegressionAggregates()
        return PerformanceAggregates(slices(key), positive_label(key))

    return make
