"""Shadow and canary against production, on the same requests.

A canary or shadow prediction shares its ``request_id`` with the production
prediction of the same request. :class:`TwinJoin` pairs them (in bounded
memory, counting what it evicts) and :class:`Divergence` accumulates, per
challenger version and window of the production prediction's time, how often
the two agreed, how far the challenger's score moved, and both latency
distributions. Score differences are summed in fixed point so that partials
merge exactly.

>>> join = TwinJoin()
>>> join.add("credit", "r1", Twin("production", "3", 1, 0.70, 20.0, 0))
[]
>>> [(p.version, c.version) for p, c in join.add("credit", "r1", Twin("canary", "4", 1, 0.75, 31.0, 5))]
[('3', '4')]
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamwatch.core.join import clean_runs
from streamwatch.core.latency import LatencySketch

__all__ = ["MIN_LATENCY_PAIRS", "MIN_PAIRS", "Divergence", "Twin", "TwinJoin"]

_SCORE_UNIT = 1e-9
#: Pairs a window needs before its agreement rate and score differences are reported.
MIN_PAIRS = 30
#: Pairs a window needs before its p95 latency ratio is reported: the p95 of 200 requests is within ~10%
#: of the true one, so two equal services rarely read 1.5 apart by chance.
MIN_LATENCY_PAIRS = 200


@dataclass(frozen=True, slots=True)
class Twin:
    """One variant's answer to a request."""

    variant: str
    version: str
    prediction: object
    score: float | None
    latency_ms: float
    timestamp_ms: int


class TwinJoin:
    """Pairs each canary or shadow prediction with the production prediction of the same request."""

    def __init__(self, max_pending: int = 200_000) -> None:
        self.max_pending = max_pending
        # Per request, its answers so far as tuples of plain values, which the garbage collector
        # stops tracking: every production prediction waits here. In order of latest answer,
        # so that expiry scans from the front.
        self._pending: OrderedDict[Hashable, tuple[tuple[Any, ...], ...]] = OrderedDict()
        self.evicted = 0

    def add(self, model: str, request_id: str, twin: Twin) -> list[tuple[Twin, Twin]]:
        """Return (production, challenger) pairs this prediction completes."""
        return self.add_answer(
            model,
            request_id,
            (twin.variant, twin.version, twin.prediction, twin.score, twin.latency_ms, twin.timestamp_ms),
        )

    def add_answer(self, model: str, request_id: str, answer: tuple[Any, ...]) -> list[tuple[Twin, Twin]]:
        """:meth:`add` for a twin given as the tuple of its fields (the hot path makes no object)."""
        key = (model, request_id)
        others = self._pending.pop(key, None)
        if others is None:
            self._pending[key] = (answer,)
            while len(self._pending) > self.max_pending:
                _, dropped = self._pending.popitem(last=False)
                self.evicted += len(dropped)
            return []
        self._pending[key] = (*others, answer)
        if answer[0] == "production":
            return [(Twin(*answer), Twin(*other)) for other in others if other[0] != "production"]
        return [(Twin(*other), Twin(*answer)) for other in others if other[0] == "production"]

    def add_answers(self, keys: list[tuple[str, str]], answers: list[tuple[Any, ...]]) -> list[tuple[str, Twin, Twin]]:
        """:meth:`add_answer` for a batch, in order: ``(model, production, challenger)`` for each pair made.

        The runs of requests new to the join and to the rest of the batch (most of it: twins are rare)
        are stored by one ``update`` each, in C, which leaves the same entries in the same order as
        adding them one by one; the others go one by one.
        """
        pairs: list[tuple[str, Twin, Twin]] = []
        pending = self._pending
        for clean, first, last in clean_runs(keys, pending):
            if clean:
                pending.update(zip(keys[first:last], [(answer,) for answer in answers[first:last]], strict=True))
                while len(pending) > self.max_pending:
                    _, dropped = pending.popitem(last=False)
                    self.evicted += len(dropped)
                continue
            for (model, request_id), answer in zip(keys[first:last], answers[first:last], strict=True):
                pairs += [(model, p, c) for p, c in self.add_answer(model, request_id, answer)]
        return pairs

    def expire(self, before_ms: int) -> None:
        """Forget requests whose latest prediction is older than ``before_ms``: no twin will come now.

        Requests are kept in order of their latest prediction, so the scan stops at the first live one.
        """
        pending = self._pending
        stale = []  # found in one pass, then deleted (a dict cannot change while it is iterated)
        for key, answers in pending.items():
            if answers[-1][5] >= before_ms:
                break
            stale.append(key)
        for key in stale:
            del pending[key]


class Divergence:
    """How a challenger (canary or shadow) compared with production over one window."""

    def __init__(self) -> None:
        self.pairs = 0
        self.agreements = 0
        self._scored = 0
        self._shift_units = 0
        self._abs_units = 0
        self.production_latency = LatencySketch()
        self.challenger_latency = LatencySketch()

    def update(self, pairs: Sequence[tuple[Twin, Twin]]) -> None:
        self.pairs += len(pairs)
        self.agreements += sum(p.prediction == c.prediction for p, c in pairs)
        scored = [(p.score, c.score) for p, c in pairs if p.score is not None and c.score is not None]
        if scored:
            diff = np.array([c - p for p, c in scored], dtype=float)
            self._shift_units += int(np.rint(diff / _SCORE_UNIT).sum())
            self._abs_units += int(np.rint(np.abs(diff) / _SCORE_UNIT).sum())
            self._scored += len(scored)
        self.production_latency.update(np.array([p.latency_ms for p, _ in pairs], dtype=float))
        self.challenger_latency.update(np.array([c.latency_ms for _, c in pairs], dtype=float))

    def merge(self, other: Divergence) -> None:
        self.pairs += other.pairs
        self.agreements += other.agreements
        self._scored += other._scored
        self._shift_units += other._shift_units
        self._abs_units += other._abs_units
        self.production_latency.merge(other.production_latency)
        self.challenger_latency.merge(other.challenger_latency)

    def metrics(self) -> list[tuple[str, float]]:
        """``agreement_rate``, ``score_shift`` (mean challenger minus production), ``score_abs_diff`` and
        ``latency_p95_ratio`` (challenger over production).

        Each is NaN (and the reporter reports no row) below the pairs it needs to mean something (:data:`MIN_PAIRS`, and
        :data:`MIN_LATENCY_PAIRS` for the p95 ratio): the p95 of a handful of requests is one of them,
        and a canary on 5% of 10 requests a minute would read a ratio of 1.5 in a window out of three.
        """
        nan = math.nan
        production_p95 = self.production_latency.quantile(0.95)
        rated = self.pairs >= MIN_PAIRS
        scored = self._scored >= MIN_PAIRS
        return [
            ("paired", float(self.pairs)),
            ("agreement_rate", self.agreements / self.pairs if rated else nan),
            ("score_shift", self._shift_units * _SCORE_UNIT / self._scored if scored else nan),
            ("score_abs_diff", self._abs_units * _SCORE_UNIT / self._scored if scored else nan),
            (
                "latency_p95_ratio",
                self.challenger_latency.quantile(0.95) / production_p95
                if production_p95 and production_p95 > 0 and self.pairs >= MIN_LATENCY_PAIRS
                else nan,
            ),
        ]
