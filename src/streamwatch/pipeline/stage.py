"""What one partition's stream accumulates: the first stage of the pipeline.

A :class:`PartitionStage` decodes batches of raw event bytes, routes them to
event-time windows, joins labels to predictions and pairs canary or shadow
predictions with production's. It judges nothing: it hands out *partials*,
mergeable aggregates of one window, for the :class:`~streamwatch.pipeline.reporter.Reporter`
to judge. In one process the partials go straight to the reporter (see
:class:`~streamwatch.pipeline.pipeline.Pipeline`); a worker running several partitions
merges the partials of every partition first (:mod:`streamwatch.pipeline.merge`),
so that no result depends on how the stream was partitioned.

Events are keyed by ``request_id`` (see the documentation), so a prediction, its label
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

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, cast

import numpy as np

from streamwatch.contract.decode import DeadLetter, DecodedBatch, PredictionIn, decode_batch
from streamwatch.core.divergence import Divergence, TwinJoin
from streamwatch.core.join import LabelJoin, Prediction
from streamwatch.core.multiclass import MulticlassAggregates
from streamwatch.core.performance import PerformanceAggregates, RegressionAggregates
from streamwatch.core.windows import TumblingWindows
from streamwatch.pipeline.aggregates import WindowAggregates

__all__ = ["Partial", "PartitionStage", "StageOutput"]

#: Event time far beyond any real one: what flushing moves the watermark to.
END_OF_TIME = 2**62

PartialKind = Literal["window", "divergence", "performance"]
#: What a prediction window's labels accumulate, by the model's task.
Performance = PerformanceAggregates | MulticlassAggregates | RegressionAggregates


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
    #: Events this batch screened out or held back, by reason (each is also a dead letter, but
    #: ``future_leap``, an event counted whose time waits for confirmation; see ``TumblingWindows``).
    screened: dict[str, int] = field(default_factory=dict)


class PartitionStage:
    """Windows, label join and twin pairing of one stream in order (a partition, or a replayed file).

    Parameters
    ----------
    window_factory
        Makes the empty aggregates of a new window for a ``(model, version, variant)`` key.
    performance_factory
        Makes the empty performance aggregates of a prediction window for a key.
    window_ms, allowed_lateness_ms, label_horizon_ms, max_lead_ms
        As for :class:`~streamwatch.pipeline.pipeline.Pipeline`.
    admit
        ``admit(model, version)`` (``version`` is ``None`` for a label): whether events of that
        model version are monitored; the others are dead letters. ``None`` admits all.
    performance_interval_ms
        How often, in event time, a prediction window's performance is handed out again while its
        labels keep coming: at once the first time (once the window has closed), then at most once
        per interval, so that labels trickling in for an hour cost a few reports, not sixty.
    fresh_ms
        Windows that started within this span of the watermark are handed out at every close
        whatever the interval: the performance view the alert rules judge is built from them.
    max_per_request
        How many predictions of one model may share a ``request_id`` while they wait for their
        label (production, canary, shadow and a few retries); past it, a prediction is a dead
        letter. A producer reusing one id for everything would otherwise make the join quadratic.
    """

    def __init__(
        self,
        window_factory: Callable[[Any], WindowAggregates],
        performance_factory: Callable[[Any], Performance],
        *,
        window_ms: int = 60_000,
        allowed_lateness_ms: int = 10_000,
        label_horizon_ms: int = 86_400_000,
        max_lead_ms: int | None = None,
        admit: Callable[[str, str | None], bool] | None = None,
        max_per_request: int = 16,
        performance_interval_ms: int = 0,
        fresh_ms: int = 0,
    ) -> None:
        self.window_ms = window_ms
        self.performance_interval_ms = performance_interval_ms
        self.fresh_ms = fresh_ms
        self.label_horizon_ms = label_horizon_ms
        self.performance_factory = performance_factory
        self.admit = admit
        self.max_per_request = max_per_request
        self.join = LabelJoin(horizon_ms=label_horizon_ms)
        self.twins = TwinJoin()
        self.windows: TumblingWindows[WindowAggregates] = TumblingWindows(
            window_ms, allowed_lateness_ms, factory=window_factory, max_lead_ms=max_lead_ms
        )
        self._divergence: dict[tuple[Any, int], Divergence] = {}
        self._performance: dict[tuple[Any, int], Performance] = {}
        self._unreported: set[tuple[Any, int]] = set()
        # Per prediction window handed out, the watermark it was last handed out at (see performance_interval_ms).
        self._handed: dict[tuple[Any, int], int] = {}

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
        screened: dict[str, int] = {}
        if plausible is not None:
            screened["implausible_time"] = _screen_times(batch, plausible)
        if self.admit is not None:
            screened["unknown_model"] = _screen_models(batch, self.admit)
        screened["request_id_reused"] = _screen_reused(batch, self.join, self.max_per_request)
        leaps = self.windows.leaps
        out = StageOutput(dead_letters=batch.dead_letters, labels_received=len(batch.labels), decoded=batch)
        # Arrival order within the batch is kept: lateness must not depend on batching.
        events = batch.predictions + batch.features
        matches: list[tuple[str, Prediction, Any]] = []
        if events:
            routed = self.windows.route(np.fromiter([e.timestamp for e in events], np.int64, len(events)))
            out.late_events = int(routed.late.sum())
            late = routed.late.tolist()
            for (key, start), members in _groups(events, routed.starts, routed.late).items():
                self.windows.window(key, start).update(members)
            self._predictions(batch.predictions, late, matches)
        for label in batch.labels:
            joined = self.join.add_label(label.model, label.request_id, label.label, label.timestamp)
            matches += [(label.model, prediction, value) for prediction, value in joined]
        out.labels_matched = len(matches)
        screened["future_leap"] = self.windows.leaps - leaps
        out.screened = {reason: n for reason, n in screened.items() if n}
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
        self.join.expire(watermark, collect=False)
        closed = self.windows.close_ready()
        if closed or flushing:
            # Performance is handed out when event time moves past a window, not after every
            # batch: the fairness figures of every touched window are too costly to recompute
            # per batch, and labels keep coming for a day anyway.
            # Only windows event time has left: a window still filling would be judged on a few labels.
            # A window labels keep reaching goes out again at most every performance_interval_ms of event time.
            # Windows of the last fresh_ms (the performance view the rules judge) go out at every close.
            interval, handed, fresh = self.performance_interval_ms, self._handed, watermark - self.fresh_ms
            done = [
                s
                for s in self._unreported
                if flushing
                or (
                    s[1] + self.window_ms <= watermark
                    and (s not in handed or s[1] >= fresh or watermark - handed[s] >= interval)
                )
            ]
            for key, start in sorted(done, key=_order):
                out.partials.append(Partial("performance", key, start, self._performance[key, start]))
                handed[key, start] = watermark
            self._unreported.difference_update(done)
        horizon = self.window_ms + self.label_horizon_ms
        for slot in [s for s in self._performance if s[1] + horizon < watermark]:
            del self._performance[slot]
            self._handed.pop(slot, None)
        # The windows are keyed by the (model, version, variant) tuples process() routes by.
        out.partials += [Partial("window", cast(tuple[Any, ...], w.key), w.start, w.aggregate) for w in closed]
        out.watermark = watermark

    def _predictions(self, predictions: list[PredictionIn], late: list[bool], matches: list[Any]) -> None:
        """Pair each prediction in time with its twins, and hand it to the label join (``matches`` gets what
        it completes).

        Every production prediction waits (a window at most) for a twin, even of models
        that never had a canary: skipping them until a model's first canary shows would
        miss pairs depending on when that canary reached each partition, and results
        must not depend on partitioning. Both joins take the batch whole: the fields they
        keep are picked in C (``attrgetter``), and a batch whose request ids are new to
        a join (the usual case) is stored by one ``dict.update``.
        """
        live = [event for event, is_late in zip(predictions, late, strict=False) if not is_late]
        if not live:
            return
        keys = list(zip(map(_MODEL, live), map(_REQUEST_ID, live), strict=True))
        window_ms, divergence = self.window_ms, self._divergence
        for model, production, challenger in self.twins.add_answers(keys, list(map(_ANSWER, live))):
            start = production.timestamp_ms - production.timestamp_ms % window_ms
            slot = ((model, challenger.version, challenger.variant, production.version), start)
            aggregate = divergence.get(slot)
            if aggregate is None:
                aggregate = divergence[slot] = Divergence()
            aggregate.update([(production, challenger)])
        scored = [i for i, event in enumerate(live) if event.prediction is not None]
        if len(scored) < len(live):
            keys, live = [keys[i] for i in scored], [live[i] for i in scored]
        packed = [(*head, _segments(event.segments)) for head, event in zip(map(_PACKED, live), live, strict=True)]
        matches += self.join.add_packed_many(keys, packed)

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
            "lead": windows._lead,
            "late": windows._late,
            "join": self.join,
            "twins": self.twins,
            "divergence": self._divergence,
            "performance": self._performance,
            "unreported": self._unreported,
            "handed": self._handed,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpointed :meth:`state`, as if the events before it had just been processed."""
        self.windows._open = state["open"]
        self.windows._max_event_time = state["max_event_time"]
        self.windows._lead = state.get("lead")  # (checkpoints before leaps were judged have none)
        self.windows._late = state["late"]
        self.join = state["join"]
        self.twins = state["twins"]
        self._divergence = state["divergence"]
        self._performance = state["performance"]
        self._unreported = state["unreported"]
        self._handed = state.get("handed", {})  # (checkpoints before the re-report interval have none)


def _screen(
    batch: DecodedBatch,
    refuse: Callable[[str, Any, int], str | None],
    kinds: tuple[str, ...] = ("prediction", "feature", "label"),
) -> int:
    """Move the events ``refuse(kind, event, position)`` gives a reason for to the dead letters; count them."""
    streams: dict[str, list[Any]] = {"prediction": batch.predictions, "feature": batch.features, "label": batch.labels}
    refused = 0
    for kind in kinds:
        events: list[Any] = streams[kind]
        positions = batch.positions[kind]
        reasons = [refuse(kind, event, at) for event, at in zip(events, positions, strict=True)]
        if not any(reasons):
            continue
        keep = [i for i, reason in enumerate(reasons) if reason is None]
        for i, reason in enumerate(reasons):
            if reason is not None:
                batch.dead_letters.append(DeadLetter(positions[i], f"{kind} event: {reason}"))
                refused += 1
        events[:] = [events[i] for i in keep]
        positions[:] = [positions[i] for i in keep]
    if refused:
        batch.dead_letters.sort(key=lambda d: d.index)
    return refused


def _screen_times(batch: DecodedBatch, plausible: Sequence[tuple[int, int]]) -> int:
    """Events whose time is outside their plausible range are dead letters."""

    def refuse(kind: str, event: Any, at: int) -> str | None:
        low, high = plausible[at]
        if low <= event.timestamp <= high:
            return None
        side = "future" if event.timestamp > high else "past"
        return f"timestamp: too far in the {side} of when it was published"

    return _screen(batch, refuse)


def _screen_models(batch: DecodedBatch, admit: Callable[[str, str | None], bool]) -> int:
    """Events of model versions not monitored are dead letters: producers cannot invent state."""
    verdicts: dict[tuple[str, str | None], bool] = {}

    def refuse(kind: str, event: Any, at: int) -> str | None:
        key = (event.model, None if kind == "label" else event.model_version)
        known = verdicts.get(key)
        if known is None:
            known = verdicts[key] = admit(*key)
        if known:
            return None
        if kind == "label":
            return f"model {event.model!r} is not monitored (see worker.unknown_models)"
        return f"model {event.model!r} version {event.model_version!r} is not monitored (see worker.unknown_models)"

    return _screen(batch, refuse)


def _screen_reused(batch: DecodedBatch, join: LabelJoin, cap: int) -> int:
    """Predictions past ``cap`` for one (model, request_id) still waiting for a label are dead letters."""
    if len(batch.predictions) == 0:
        return 0
    keys = [(event.model, event.request_id) for event in batch.predictions]
    most_in_batch = Counter(keys).most_common(1)[0][1]
    if most_in_batch + max(map(join.waiting_for, keys)) <= cap:
        return 0  # no id can pass the cap in this batch (the usual case): no step per event
    counts: dict[tuple[str, str], int] = {}

    def refuse(kind: str, event: Any, at: int) -> str | None:
        key = (event.model, event.request_id)
        n = counts.get(key)
        if n is None:
            n = join.waiting(*key)
        counts[key] = n + 1
        if n < cap:
            return None
        return f"request_id: {cap} predictions of this model already wait under the same request_id"

    return _screen(batch, refuse, ("prediction",))


def _groups(events: list[Any], starts: np.ndarray, late: np.ndarray) -> dict[tuple[Any, int], list[Any]]:
    """The events in time, by ``((model, version, variant), window start)``, each group in arrival order.

    Keys are coded once per event, then grouped with a stable sort on the codes: no Python step
    per event and group.
    """
    codes: dict[tuple[Any, ...], int] = {}
    keyed = [codes.setdefault((e.model, e.model_version, e.variant), len(codes)) for e in events]
    keys = list(codes)
    if len(keys) == 1 and not late.any() and starts[0] == starts[-1] and (starts == starts[0]).all():
        return {(keys[0], int(starts[0])): events}  # the usual batch: one model version, one window
    kept, coded = np.flatnonzero(~late), np.asarray(keyed, dtype=np.int64)
    order = kept[np.lexsort((starts[kept], coded[kept]))]
    key_codes, ordered_starts = coded[order], starts[order]
    cuts = np.flatnonzero((np.diff(key_codes) != 0) | (np.diff(ordered_starts) != 0)) + 1
    groups: dict[tuple[Any, int], list[Any]] = {}
    for chunk in np.split(order, cuts):
        if chunk.size:
            first = int(chunk[0])
            groups[keys[keyed[first]], int(starts[first])] = [events[i] for i in chunk.tolist()]
    return groups


_MODEL, _REQUEST_ID = attrgetter("model"), attrgetter("request_id")
#: What the twin join keeps of a prediction (``core.divergence.Twin``'s fields) and the label join
#: (``core.join.Prediction``'s, but the segments), picked in C.
_ANSWER = attrgetter("variant", "model_version", "prediction", "score", "latency_ms", "timestamp")
_PACKED = attrgetter("timestamp", "model_version", "variant", "prediction", "score")


def _segments(segments: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(segments.items())) if segments else ()


def _order(slot: tuple[Any, int]) -> tuple[int, str]:
    return slot[1], str(slot[0])
