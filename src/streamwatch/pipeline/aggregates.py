"""What one event-time window of one model version and variant accumulates.

For every feature of the version's reference profile: a histogram on the
reference's bins (numeric) or counts of its categories (categorical), plus
missing, out-of-range and type-mismatch counts; the score's histogram; a
latency sketch; SLI counts; request and error counts; and a few request ids
(the smallest) for alerts to point at. Every part merges exactly, so windows computed by
several partitions combine into the window of the whole stream.
"""

from __future__ import annotations

import copy
import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, cast

import numpy as np

from streamwatch.core.categories import CategoryCounts
from streamwatch.core.embedding import EmbeddingCounts, EmbeddingReference
from streamwatch.core.estimation import EstimateCounts, score_cells
from streamwatch.core.histogram import NumericHistogram, update_columns
from streamwatch.core.latency import LatencySketch
from streamwatch.core.multivariate import ReconstructionCounts, SliceReconstructionCounts
from streamwatch.core.performance import is_positive
from streamwatch.core.slo import SLO, SLICounts
from streamwatch.profiles.model import CategoricalProfile, NumericProfile, ReferenceProfile, projection_name

__all__ = ["EXAMPLES_PER_WINDOW", "WindowAggregates"]

#: Request ids kept per window, so an alert can point at real requests.
EXAMPLES_PER_WINDOW = 5
#: Feature names outside the reference counted by name per window; the values of any others are
#: counted together under ``""``. Keeping the alphabetically first names keeps merging exact: a
#: name one partial dropped has as many names before it there, so it cannot be among the whole's.
UNKNOWN_FEATURE_NAMES = 20


def _trim_unknown(counts: dict[str, int]) -> None:
    named = sorted(name for name in counts if name)
    for name in named[UNKNOWN_FEATURE_NAMES:]:
        counts[""] += counts.pop(name)


def _feature_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Sequence[Any]] | None:
    """Each feature's values across the batch (one C call per event picks them all), or None when an
    event lacks one of them."""
    if not names:
        return {}
    pick = itemgetter(*names)
    try:
        picked = [pick(row) for row in rows]
    except KeyError:
        return None
    if len(names) == 1:
        return {names[0]: picked}
    if not picked:
        return {name: [] for name in names}
    return dict(zip(names, zip(*picked, strict=True), strict=True))


def _embedding_counts(
    profile: ReferenceProfile | None,
) -> tuple[dict[str, EmbeddingCounts], dict[str, NumericHistogram]]:
    embeddings = profile.embeddings if profile is not None else {}
    counts = {name: EmbeddingCounts(e.dims) for name, e in embeddings.items()}
    projections = {
        projection_name(name, i): NumericHistogram(p.edges)
        for name, e in embeddings.items()
        for i, p in enumerate(e.projections)
    }
    return counts, projections


class WindowAggregates:
    """Everything one window of one model version and variant accumulates; all of it merges exactly."""

    def __init__(self, profile: ReferenceProfile | None, slo: SLO, slices: Sequence[Sequence[str]] = ()) -> None:
        self.profile = profile
        self.sli = SLICounts(slo)
        self.features: dict[str, NumericHistogram | CategoryCounts] = {}
        self.out_of_range: dict[str, int] = defaultdict(int)
        self.type_mismatch: dict[str, int] = defaultdict(int)
        self.unknown_features: dict[str, int] = defaultdict(int)
        if profile is not None:
            for name, reference in profile.features.items():
                self.features[name] = (
                    NumericHistogram(reference.edges)
                    if isinstance(reference, NumericProfile)
                    else CategoryCounts(reference.categories)
                )
        self.score = NumericHistogram(profile.score.edges) if profile and profile.score else None
        # What the model predicted, on the reference's bins or classes: drift of the predicted class (or value).
        self.prediction: NumericHistogram | CategoryCounts | None = None
        if profile is not None and isinstance(profile.prediction, NumericProfile):
            self.prediction = NumericHistogram(profile.prediction.edges)
        elif profile is not None and isinstance(profile.prediction, CategoricalProfile):
            self.prediction = CategoryCounts(profile.prediction.categories)
        # A binary classifier whose score the reference calibrated: predictions per (predicted class, score bin)
        # and slice, from which performance is estimated before labels arrive (core.estimation).
        self.estimate = (
            EstimateCounts(len(profile.score.edges) + 1, slices)
            if profile is not None and profile.calibration is not None and profile.score is not None
            else None
        )
        # The features' joint distribution: each event's reconstruction error by the reference's PCA.
        joint = profile.multivariate if profile is not None else None
        self.multivariate = ReconstructionCounts(joint.edges) if joint is not None else None
        # ...and per slice of the predictions (feature events carry no segments: they are in no slice)
        self.multivariate_slices = (
            SliceReconstructionCounts(joint.edges, slices) if joint is not None and slices else None
        )
        self._reconstruction = joint.model() if joint is not None else None  # derived: not checkpointed
        # Each embedding's mean (exact sums) and its projections on the reference's principal components (on
        # the reference projections' bins: drift "features" named by projection_name), and the vectors refused
        # for a length other than the reference's.
        self.embeddings, self.projections = _embedding_counts(profile)
        self.embedding_wrong_length: dict[str, int] = defaultdict(int)
        self._embedding_references = self._references()  # derived: not checkpointed
        self.latency = LatencySketch()
        self.requests = 0
        self.errors = 0
        self.examples: list[str] = []

    def update(self, events: Sequence[Any]) -> None:
        """Add a batch of decoded prediction or feature events (all of this window; see ``decode``)."""
        rows = [event.features for event in events]
        names = list(self.features)
        found = _feature_columns(rows, names)
        # (if some event lacks a feature: feature by feature, a missing one counted as such)
        by_name = found if found is not None else {name: [row.get(name) for row in rows] for name in names}
        numeric = [name for name in names if isinstance(self.features[name], NumericHistogram)]
        picked = [by_name[name] for name in numeric]
        if numeric and str not in set(map(type, chain.from_iterable(picked))):
            # Every numeric feature of the batch at once, a row per feature (None becomes NaN, True 1.0).
            self._numeric_columns_counted(numeric, np.array(picked, dtype=float).reshape(len(numeric), len(rows)))
        else:  # a string where the reference had numbers: the slow path counts the type mismatches
            for name in numeric:
                self._numeric(name, cast(NumericHistogram, self.features[name]), list(by_name[name]))
        for name, aggregate in self.features.items():
            if isinstance(aggregate, CategoryCounts):
                self._categorical(name, aggregate, list(by_name[name]))
        known = self.features.keys()
        unknown = self.unknown_features
        # Each event holds exactly the known features (the usual case) when all were found and the counts add up.
        exact = found is not None and sum(map(len, rows)) == len(rows) * len(names)
        for row in () if exact else rows:
            if not known >= row.keys():
                for name in row.keys() - known:
                    unknown[name] += 1
                if len(unknown) > 4 * UNKNOWN_FEATURE_NAMES:  # bounded while it fills, not only at the end
                    _trim_unknown(unknown)
        if len(unknown) > UNKNOWN_FEATURE_NAMES:
            _trim_unknown(unknown)
        if self.multivariate is not None and rows:
            sliced = self.multivariate_slices.slices if self.multivariate_slices is not None else ()
            segments = {  # (feature events carry no segments: in no slice)
                name: np.array([getattr(event, "segments", {}).get(name) for event in events], dtype=object)
                for name in {n for group in sliced for n in group}
            }
            self._reconstructed(by_name, len(rows), segments)
        predictions = [event for event in events if event.type == "prediction"]
        if not predictions:
            return
        if self.embeddings or any(event.embeddings for event in predictions):
            self._embedded(predictions)
        self.requests += len(predictions)
        self.errors += sum(event.status == "error" for event in predictions)
        latencies = np.array([event.latency_ms for event in predictions], dtype=float)
        self.latency.update(latencies)
        self.sli.update(np.array([event.status == "ok" for event in predictions], dtype=bool), latencies)
        if self.score is not None:
            self.score.update(np.array([event.score for event in predictions], dtype=float))
        if self.estimate is not None:
            self._estimate(predictions)
        if self.prediction is not None:
            self._predicted([event.prediction for event in predictions])
        # The smallest ids, not the first ones: that choice merges exactly across partitions.
        self.examples = heapq.nsmallest(
            EXAMPLES_PER_WINDOW, {*self.examples, *(event.request_id for event in predictions)}
        )

    def _embedded(self, predictions: list[Any]) -> None:
        """Each embedding's vectors of the batch as one matrix: its sums, and its projections counted on their
        bins. A vector of another length than the reference's is counted as such, and an embedding the
        reference does not have is an unknown feature (``embeddings.<name>``)."""
        for name, counts in self.embeddings.items():
            vectors = [vector for event in predictions if (vector := event.embeddings.get(name)) is not None]
            if not vectors:
                continue
            good = [vector for vector in vectors if len(vector) == counts.dims]
            if len(good) < len(vectors):
                self.embedding_wrong_length[name] += len(vectors) - len(good)
            if not good:
                continue
            # (one pass of C over the numbers: ~15% faster than np.array of the lists)
            self._embedded_matrix(
                name, np.fromiter(chain.from_iterable(good), float, len(good) * counts.dims).reshape(len(good), -1)
            )
        known = self.embeddings.keys()
        for event in predictions:
            if event.embeddings and not known >= event.embeddings.keys():
                for name in event.embeddings.keys() - known:
                    self.unknown_features[f"embeddings.{name}"] += 1
        if len(self.unknown_features) > UNKNOWN_FEATURE_NAMES:
            _trim_unknown(self.unknown_features)

    def _embedded_matrix(self, name: str, matrix: np.ndarray) -> None:
        """Count an embedding's vectors (rows of the right length): their sums, and their projections on the
        reference's components (one matrix product), on the projections' bins."""
        self.embeddings[name].update(matrix)
        projected = self._embedding_references[name].project(matrix)
        update_columns(
            [self.projections[projection_name(name, i)] for i in range(projected.shape[1])], projected.T.copy()
        )

    def embedding_reference(self, name: str) -> EmbeddingReference:
        """The reference of the profile's embedding ``name``, as ``core.embedding`` computes with it."""
        return self._embedding_references[name]

    def _references(self) -> dict[str, EmbeddingReference]:
        embeddings = self.profile.embeddings if self.profile is not None else {}
        return {name: e.reference() for name, e in embeddings.items()}

    def _reconstructed(
        self, by_name: Mapping[str, Sequence[Any]], rows: int, segments: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Every event's reconstruction error (one matrix product per batch), counted on the reference's bins.
        A missing numeric value is imputed with the reference mean and counted; a string where a number
        belongs is missing here (and a type mismatch in the feature's own counts)."""
        assert self.multivariate is not None and self._reconstruction is not None and self.profile is not None
        reference = self.profile.multivariate
        assert reference is not None
        columns = [by_name[name] for name in reference.numeric]
        try:
            matrix = np.array(columns, dtype=float).reshape(len(columns), rows).T
        except (TypeError, ValueError):  # a string among the numbers
            matrix = (
                np.array(
                    [[v if isinstance(v, int | float) else None for v in column] for column in columns], dtype=float
                )
                .reshape(len(columns), rows)
                .T
            )
        errors, imputed = self._reconstruction.errors(matrix, [list(by_name[name]) for name in reference.categorical])
        self.multivariate.update(errors, imputed)
        if self.multivariate_slices is not None and segments is not None:
            self.multivariate_slices.update(errors, segments)

    def _predicted(self, values: list[Any]) -> None:
        """Count what the model predicted (errors predict nothing: missing), as the reference profiled it:
        numbers on its bins (a string there is missing), anything else as text among its classes."""
        if isinstance(self.prediction, NumericHistogram):
            numbers = [v if isinstance(v, int | float) else None for v in values]
            self.prediction.update(np.array(numbers, dtype=float))
        elif isinstance(self.prediction, CategoryCounts):
            self.prediction.update([None if v is None else str(v) for v in values])

    def _estimate(self, predictions: list[Any]) -> None:
        """Count the scored predictions by predicted class, score bin and slice, for estimated performance."""
        assert self.estimate is not None and self.profile is not None and self.score is not None
        scored = [event for event in predictions if event.score is not None and event.prediction is not None]
        if not scored:
            return
        positive = self.profile.positive_label or "1"
        # A batch holds a few distinct classes: judge each once.
        verdict = {value: is_positive(value, positive) for value in {event.prediction for event in scored}}
        predicted = np.fromiter((verdict[event.prediction] for event in scored), dtype=bool, count=len(scored))
        cells = score_cells(self.score.edges, np.array([event.score for event in scored], dtype=float))
        names = {name for group in self.estimate.slices for name in group}
        segments = {name: np.array([event.segments.get(name) for event in scored], dtype=object) for name in names}
        self.estimate.update(cells, predicted, segments)

    def _numeric_columns_counted(self, names: list[str], columns: np.ndarray) -> None:
        """Histograms and out-of-range counts of every numeric feature from the batch's columns."""
        update_columns([cast(NumericHistogram, self.features[name]) for name in names], columns)
        if self.profile is None:
            return
        references = [self.profile.features[name] for name in names]
        bounded = [i for i, r in enumerate(references) if isinstance(r, NumericProfile) and r.min is not None]
        if not bounded:
            return
        lows = np.array([[cast(NumericProfile, references[i]).min] for i in bounded], dtype=float)
        highs = np.array([[cast(NumericProfile, references[i]).max] for i in bounded], dtype=float)
        picked = columns[bounded]
        outside = ((picked < lows) | (picked > highs)).sum(axis=1).tolist()
        for i, count in zip(bounded, outside, strict=True):
            self.out_of_range[names[i]] += count

    def _numeric(self, name: str, histogram: NumericHistogram, column: list[Any]) -> None:
        if str in set(map(type, column)):
            # A string where the reference had numbers is a type mismatch, counted
            # apart from missing values and kept out of the distribution.
            self.type_mismatch[name] += sum(type(v) is str for v in column)
            column = [v for v in column if type(v) is not str]
        self._numeric_values(name, histogram, np.array(column, dtype=float))  # None becomes NaN, True 1.0

    def _numeric_values(self, name: str, histogram: NumericHistogram, values: np.ndarray) -> None:
        histogram.update(values)
        reference = self.profile.features[name] if self.profile else None
        if isinstance(reference, NumericProfile) and reference.min is not None:
            self.out_of_range[name] += int(np.count_nonzero((values < reference.min) | (values > reference.max)))

    def _categorical(self, name: str, counts: CategoryCounts, column: list[Any]) -> None:
        if not {str, type(None)}.issuperset(map(type, column)):
            self.type_mismatch[name] += sum(type(v) is not str and v is not None for v in column)
            column = [v for v in column if type(v) is str or v is None]
        counts.update(column)

    def copy(self) -> WindowAggregates:
        """An independent copy of the counts, sharing the (read-only) reference profile and its model."""
        return copy.deepcopy(
            self,
            memo={
                id(self.profile): self.profile,
                id(self._reconstruction): self._reconstruction,
                id(self._embedding_references): self._embedding_references,
            },
        )

    def rebuild(self) -> None:
        """Set the attributes derived from the profile again (after a checkpoint is read)."""
        reference = self.profile.multivariate if self.profile is not None else None
        self._reconstruction = reference.model() if reference is not None else None
        self._embedding_references = self._references()
        if self.embeddings is None:  # a checkpoint from before embeddings (format 5): none were counted
            self.embeddings, self.projections = _embedding_counts(self.profile)
            self.embedding_wrong_length = defaultdict(int)

    def merge(self, other: WindowAggregates) -> None:
        for name, aggregate in self.features.items():
            aggregate.merge(other.features[name])  # type: ignore[arg-type]  # one profile made both: a feature's kinds match
        for mine, theirs in (
            (self.out_of_range, other.out_of_range),
            (self.type_mismatch, other.type_mismatch),
            (self.unknown_features, other.unknown_features),
        ):
            for name, count in theirs.items():
                mine[name] += count
        _trim_unknown(self.unknown_features)
        if self.score is not None and other.score is not None:
            self.score.merge(other.score)
        if self.estimate is not None and other.estimate is not None:
            self.estimate.merge(other.estimate)
        if self.prediction is not None and other.prediction is not None:
            self.prediction.merge(other.prediction)  # type: ignore[arg-type]  # one profile made both
        if self.multivariate is not None and other.multivariate is not None:
            self.multivariate.merge(other.multivariate)
        if self.multivariate_slices is not None and other.multivariate_slices is not None:
            self.multivariate_slices.merge(other.multivariate_slices)
        for name, counts in self.embeddings.items():
            counts.merge(other.embeddings[name])
        for name, histogram in self.projections.items():
            histogram.merge(other.projections[name])
        for name, count in other.embedding_wrong_length.items():
            self.embedding_wrong_length[name] += count
        self.latency.merge(other.latency)
        self.sli.merge(other.sli)
        self.requests += other.requests
        self.errors += other.errors
        self.examples = heapq.nsmallest(EXAMPLES_PER_WINDOW, {*self.examples, *other.examples})
