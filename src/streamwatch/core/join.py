"""The delayed-label join: labels meet their predictions on ``(model, request_id)``.

Ground truth arrives minutes to weeks after a prediction, and sometimes
before it (the label topic can be ahead of the prediction topic). A label
joins a prediction when its event time is at most ``horizon_ms`` after the
prediction's. Canary and shadow predictions share the request id with
production, so one label may match several predictions.

Every prediction ends in exactly one of ``matched_predictions``,
``unlabelled`` (its horizon passed with no label), ``evicted_predictions``
(the state hit its hard cap, ``max_pending``, oldest first) or still pending.
Every label ends in exactly one of ``matched_labels`` (``early_labels`` of
them arrived before a prediction they matched), ``late_labels`` (more than the
horizon after its predictions), ``orphan_labels`` (no prediction came within
the horizon), ``duplicate_labels``, ``evicted_labels`` or still pending.
Memory is bounded by ``max_pending`` predictions plus ``max_pending`` labels.

Time comes from events: :meth:`LabelJoin.expire` takes the watermark.

>>> join = LabelJoin(horizon_ms=1_000)
>>> join.add_prediction("credit", "r1", Prediction(timestamp_ms=0, model_version="3", variant="production",
...                                                 prediction=1, score=0.9))
[]
>>> [(p.prediction, label) for p, label in join.add_label("credit", "r1", label=1, timestamp_ms=400)]
[(1, 1)]
>>> join.matched_predictions, join.matched_labels, join.pending_predictions
(1, 1, 0)
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LabelJoin", "Prediction"]

DAY_MS = 86_400_000


def clean_runs(keys: list[Any], *known: Any) -> list[tuple[bool, int, int]]:
    """``keys`` cut into runs ``(clean, first, last)``: clean ones hold keys that are in none of the ``known``
    containers nor elsewhere in ``keys`` (a dict may take them all at once); the others go one by one.
    Costs what the batch holds, whatever the size of ``known``.

    >>> clean_runs(["a", "b", "c", "b", "d"], {"d"})
    [(True, 0, 1), (False, 1, 2), (True, 2, 3), (False, 3, 5)]
    """
    distinct = set(keys)
    dirty = {key for key, n in Counter(keys).items() if n > 1} if len(distinct) < len(keys) else set()
    for container in known:
        dirty.update(filter(container.__contains__, distinct))
    if not dirty:
        return [(True, 0, len(keys))] if keys else []
    runs: list[tuple[bool, int, int]] = []
    first = 0
    for i in [i for i, key in enumerate(keys) if key in dirty]:
        if i > first:
            runs.append((True, first, i))
        if runs and not runs[-1][0] and runs[-1][2] == i:
            runs[-1] = (False, runs[-1][1], i + 1)
        else:
            runs.append((False, i, i + 1))
        first = i + 1
    if first < len(keys):
        runs.append((True, first, len(keys)))
    return runs


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the join keeps of a prediction until its label comes: enough to score it in its window."""

    timestamp_ms: int
    model_version: str
    variant: str
    prediction: Any
    score: float | None = None
    segments: tuple[tuple[str, str], ...] = field(default=())


def _pack(p: Prediction) -> tuple[Any, ...]:
    return (p.timestamp_ms, p.model_version, p.variant, p.prediction, p.score, p.segments)


@dataclass(slots=True)
class _Label:
    label: Any
    timestamp_ms: int
    matched: bool = False


class LabelJoin:
    """Join labels to predictions within ``horizon_ms`` of event time, in bounded memory.

    Parameters
    ----------
    horizon_ms
        How long after a prediction its label may arrive (default 24 hours).
    max_pending
        Hard cap on predictions, and on labels, kept waiting for a partner.
    clock_skew_ms
        How far a label's time may fall *before* its prediction's and still
        match: labels and predictions are stamped by different services' clocks.
    """

    def __init__(self, horizon_ms: int = DAY_MS, max_pending: int = 1_000_000, clock_skew_ms: int = 60_000) -> None:
        if horizon_ms <= 0 or max_pending <= 0 or clock_skew_ms < 0:
            raise ValueError("horizon_ms and max_pending must be positive, clock_skew_ms not negative")
        self.horizon_ms = horizon_ms
        self.max_pending = max_pending
        self.clock_skew_ms = clock_skew_ms
        # Insertion-ordered so that eviction drops the oldest first. Pending predictions
        # are kept as tuples of plain values, which CPython's garbage collector stops
        # tracking: a million dataclass objects would be rescanned on every collection.
        self._predictions: OrderedDict[Hashable, tuple[tuple[Any, ...], ...]] = OrderedDict()
        self._labels: OrderedDict[Hashable, _Label] = OrderedDict()
        self._npredictions = 0
        self.matched_predictions = self.unlabelled = self.evicted_predictions = 0
        self.matched_labels = self.early_labels = self.late_labels = 0
        self.orphan_labels = self.duplicate_labels = self.evicted_labels = 0

    def _within(self, prediction_ms: int, label_ms: int) -> bool:
        return -self.clock_skew_ms <= label_ms - prediction_ms <= self.horizon_ms

    @property
    def pending_predictions(self) -> int:
        return self._npredictions

    def waiting(self, model: str, request_id: str) -> int:
        """How many predictions of ``model`` wait for the label of ``request_id``."""
        return len(self._predictions.get((model, request_id), ()))

    def waiting_for(self, key: tuple[str, str]) -> int:
        """:meth:`waiting` for a ``(model, request_id)`` key."""
        return len(self._predictions.get(key, ()))

    @property
    def pending_labels(self) -> int:
        """Labels kept that have not matched yet."""
        return sum(not label.matched for label in self._labels.values())

    def add_prediction(self, model: str, request_id: str, prediction: Prediction) -> list[tuple[Prediction, Any]]:
        """Keep a prediction until its label comes; return it with its label if the label is already here."""
        return self.add_packed(model, request_id, _pack(prediction))

    def add_packed(self, model: str, request_id: str, packed: tuple[Any, ...]) -> list[tuple[Prediction, Any]]:
        """:meth:`add_prediction` for a prediction given as the tuple of its fields (the hot path makes no object)."""
        key = (model, request_id)
        waiting = self._labels.get(key)
        if waiting is not None and self._within(packed[0], waiting.timestamp_ms):
            self.matched_predictions += 1
            if not waiting.matched:
                waiting.matched = True
                self.matched_labels += 1
                self.early_labels += 1
            return [(Prediction(*packed), waiting.label)]
        self._predictions[key] = (*self._predictions.get(key, ()), packed)
        self._npredictions += 1
        while self._npredictions > self.max_pending:
            _, evicted = self._predictions.popitem(last=False)
            self._npredictions -= len(evicted)
            self.evicted_predictions += len(evicted)
        return []

    def add_packed_many(
        self, keys: list[tuple[str, str]], packed: list[tuple[Any, ...]]
    ) -> list[tuple[str, Prediction, Any]]:
        """:meth:`add_packed` for a batch of ``(model, request_id)`` keys, in order: ``(model, prediction, label)``
        for each prediction whose label is already here.

        The runs of keys new to the join (no label, no prediction waiting under them) and to the rest
        of the batch, most of it, are stored by one ``update`` each, in C, which leaves the same entries
        in the same order, and evicts the same ones, as adding them one by one; the others go one by one.
        """
        matches: list[tuple[str, Prediction, Any]] = []
        waiting = self._predictions
        for clean, first, last in clean_runs(keys, waiting, self._labels):
            if clean:
                waiting.update(zip(keys[first:last], [(p,) for p in packed[first:last]], strict=True))
                self._npredictions += last - first
                while self._npredictions > self.max_pending:
                    _, evicted = waiting.popitem(last=False)
                    self._npredictions -= len(evicted)
                    self.evicted_predictions += len(evicted)
                continue
            for (model, request_id), p in zip(keys[first:last], packed[first:last], strict=True):
                matches += [(model, prediction, label) for prediction, label in self.add_packed(model, request_id, p)]
        return matches

    def add_label(self, model: str, request_id: str, label: Any, timestamp_ms: int) -> list[tuple[Prediction, Any]]:
        """Match a label with its waiting predictions, and keep it for twins still to come."""
        key = (model, request_id)
        if key in self._labels:
            self.duplicate_labels += 1
            return []
        predictions = [Prediction(*packed) for packed in self._predictions.pop(key, ())]
        self._npredictions -= len(predictions)
        matches = [(p, label) for p in predictions if self._within(p.timestamp_ms, timestamp_ms)]
        too_old = len(predictions) - len(matches)
        self.matched_predictions += len(matches)
        self.unlabelled += too_old  # their label came, but too late to count
        if predictions and not matches:
            self.late_labels += 1
            return []
        if matches:
            self.matched_labels += 1
        self._labels[key] = _Label(label, timestamp_ms, matched=bool(matches))
        while len(self._labels) > self.max_pending:
            _, evicted = self._labels.popitem(last=False)
            if not evicted.matched:
                self.evicted_labels += 1
        return matches

    def expire(self, watermark_ms: int, *, collect: bool = True) -> list[Prediction]:
        """Forget what can no longer match; return the predictions that will never get a label (with ``collect``).

        A prediction expires once the watermark is past its time plus the
        horizon, and so does a kept label (a prediction later than the label
        itself could not be its own). Both are scanned oldest first and the
        scan stops at the first one still live, so each call costs what it
        expires, not what it keeps: an entry that arrived out of time order
        waits for the ones before it, within the ``max_pending`` bound.
        """
        expired: list[Prediction] = []
        horizon = watermark_ms - self.horizon_ms
        stale = []  # the keys before the first live one, found in one pass
        for key, packed in self._predictions.items():
            if (packed[0][0] if len(packed) == 1 else min(p[0] for p in packed)) >= horizon:
                break
            stale.append((key, packed))
        gone = 0
        for key, packed in stale:
            keep = tuple(p for p in packed if p[0] >= horizon)
            gone += len(packed) - len(keep)
            if collect:  # (a caller that only moves time on does not need them made)
                expired += [Prediction(*p) for p in packed if p[0] < horizon]
            if keep:
                self._predictions[key] = keep
                self._predictions.move_to_end(key)
            else:
                del self._predictions[key]
        self._npredictions -= gone
        self.unlabelled += gone
        old = []
        for key, label in self._labels.items():
            if label.timestamp_ms >= horizon:
                break
            old.append((key, label))
        for key, label in old:
            del self._labels[key]
            if not label.matched:
                self.orphan_labels += 1
        return expired
