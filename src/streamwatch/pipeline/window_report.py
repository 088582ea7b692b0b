"""What a closed window (or a rolling view of several) says: metric rows and drift findings."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from scipy.stats import binom

from streamwatch.core.categories import CategoryCounts
from streamwatch.core.drift import bin_support
from streamwatch.core.drift_report import DriftSummary, WindowKey, evaluate_drift
from streamwatch.core.embedding import distance_thresholds, mean_distances
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.multivariate import reconstruction_threshold
from streamwatch.core.records import Finding, MetricRow
from streamwatch.core.thresholds import calibrate
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.profiles.model import CategoricalProfile, NumericProfile, ReferenceProfile, projection_name

__all__ = [
    "ReferenceCache",
    "calibrated_probabilities",
    "drift_of",
    "embedding_rows",
    "estimated_rows",
    "multivariate_rows",
    "operational_rows",
    "quality_rows",
]

SCORE = "__score__"
#: The predicted value (class or number) as a drift "feature": a shift in what the model predicts.
PREDICTION = "__prediction__"

#: A profile's reference aggregates, by feature.
_References = dict[str, NumericHistogram | CategoryCounts]


class ReferenceCache:
    """Each profile's reference aggregates, built once rather than at every window close.

    ``calibrate_for`` calibrates every threshold for windows of that many
    values; ``"auto"`` calibrates for each window's own size, rounded down to a
    power of two (a window of 40 canary requests strays further from the
    reference by chance than one of 4,000, and must not raise drift for it).
    """

    def __init__(self, calibrate_for: int | Literal["auto"] | None = None) -> None:
        self.calibrate_for = calibrate_for
        self._built: dict[int, tuple[ReferenceProfile, _References, dict[str, float]]] = {}
        self._calibrated: dict[tuple[bytes, int, float], dict[str, float]] = {}
        self._fingerprints: dict[tuple[int, str], tuple[ReferenceProfile, bytes]] = {}
        self._reconstruction: dict[tuple[int, int, float], tuple[ReferenceProfile, float]] = {}
        self._embedding: dict[tuple[int, str, int, float], tuple[ReferenceProfile, tuple[float, float]]] = {}

    def embedding_thresholds(self, profile: ReferenceProfile, name: str, n: int, alpha: float) -> tuple[float, float]:
        """The (Euclidean, cosine) distances between the mean vectors of a window of ``n`` events drawn from the
        reference and the reference's that are exceeded with probability ``alpha`` (``core.embedding``), for
        ``n`` rounded down to a power of two (never up: a smaller window strays further)."""
        size = 1 << (max(n, 1).bit_length() - 1)
        key = (id(profile), name, size, alpha)
        cached = self._embedding.get(key)
        if cached is None or cached[0] is not profile:
            thresholds = distance_thresholds(profile.embeddings[name].reference(), size, alpha)
            cached = self._embedding[key] = (profile, thresholds)
        return cached[1]

    def reconstruction_threshold(self, profile: ReferenceProfile, n: int, alpha: float) -> float:
        """The mean reconstruction error a window of ``n`` events drawn from the reference exceeds with
        probability ``alpha``, for ``n`` rounded down to a power of two (a few sizes, each resampled once;
        a smaller window strays further, so the threshold errs on the quiet side)."""
        reference = profile.multivariate
        assert reference is not None
        size = 1 << (max(n, 1).bit_length() - 1)  # never rounded up: a window smaller than the size strays further
        key = (id(profile), size, alpha)
        cached = self._reconstruction.get(key)
        if cached is None or cached[0] is not profile:
            histogram = NumericHistogram.from_counts(reference.edges, reference.counts)
            cached = self._reconstruction[key] = (profile, reconstruction_threshold(histogram, size, alpha))
        return cached[1]

    def thresholds(
        self, profile: ReferenceProfile, sizes: dict[str, int] | None = None, alpha: float = 0.01
    ) -> dict[str, dict[str, float]]:
        """Calibrated thresholds per feature (none if not calibrating); ``sizes`` are the window's value counts,
        ``alpha`` the chance a stationary window may cross one (see ``core.budget``)."""
        if self.calibrate_for is None:
            return {}
        references, scales = self.get(profile)
        out = {}
        for name, reference in references.items():
            if self.calibrate_for == "auto":
                n = (sizes or {}).get(name, 0)
                if n < 1:
                    continue
                # Rounded down: a smaller window strays further, so its threshold errs on the quiet side.
                size = max(32, 1 << (n.bit_length() - 1))  # a few sizes per feature, each computed once
            else:
                size = self.calibrate_for
            key = (self._fingerprint(profile, name, reference, scales.get(name, 1.0)), size, alpha)
            values = self._calibrated.get(key)
            if values is None:
                support = bin_support(reference) if isinstance(reference, NumericHistogram) else None
                values = calibrate(reference.counts, size, support=support, scale=scales.get(name, 1.0), alpha=alpha)
                self._calibrated[key] = values
            out[name] = values
        return out

    def _fingerprint(
        self, profile: ReferenceProfile, name: str, reference: NumericHistogram | CategoryCounts, scale: float
    ) -> bytes:
        """What a feature's calibration depends on, as a digest: two versions trained on the same data (a
        canary's profile, often) or a profile read again share their calibrations, which cost ~50 ms each."""
        cached = self._fingerprints.get((id(profile), name))
        if cached is not None and cached[0] is profile:
            return cached[1]
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.asarray(reference.counts, dtype=np.int64).tobytes())
        if isinstance(reference, NumericHistogram):
            digest.update(np.asarray(bin_support(reference), dtype=float).tobytes())
        digest.update(repr((type(reference).__name__, float(scale))).encode())
        self._fingerprints[(id(profile), name)] = (profile, digest.digest())
        return digest.digest()

    def get(self, profile: ReferenceProfile) -> tuple[dict[str, NumericHistogram | CategoryCounts], dict[str, float]]:
        cached = self._built.get(id(profile))
        if cached is not None and cached[0] is profile:
            return cached[1], cached[2]
        references: dict[str, NumericHistogram | CategoryCounts] = {}
        scales: dict[str, float] = {}
        for name, reference in profile.features.items():
            if isinstance(reference, NumericProfile):
                references[name], scales[name] = reference.histogram(), reference.std or 1.0
            elif isinstance(reference, CategoricalProfile):
                references[name] = reference.category_counts()
        if profile.score is not None:
            references[SCORE], scales[SCORE] = profile.score.histogram(), profile.score.std or 1.0
        for embedding, embedded in profile.embeddings.items():
            for i, projection in enumerate(embedded.projections):
                name = projection_name(embedding, i)
                references[name], scales[name] = projection.histogram(), projection.std or 1.0
        if isinstance(profile.prediction, NumericProfile):
            references[PREDICTION] = profile.prediction.histogram()
            scales[PREDICTION] = profile.prediction.std or 1.0
        elif isinstance(profile.prediction, CategoricalProfile):
            references[PREDICTION] = profile.prediction.category_counts()
        self._built[id(profile)] = (profile, references, scales)
        return references, scales


def _row(
    key: WindowKey, metric: str, value: float, window: str, reference: str | None, feature: str | None = None
) -> MetricRow:
    return key.row(
        metric,
        value,
        feature=feature,
        window=window,
        reference=reference,
    )


def drift_of(
    key: WindowKey,
    aggregates: WindowAggregates,
    cache: ReferenceCache,
    window: str,
    overrides: Mapping[str, Mapping[str, float]] | None = None,
    alpha: float = 0.01,
) -> DriftSummary:
    """Drift of every feature and of the score against the window's reference profile.

    Thresholds: the defaults, then those calibrated on the reference (when the
    cache calibrates) for a false-positive rate of ``alpha`` per window and
    feature, then ``overrides`` from the config, each over the last.
    """
    profile = aggregates.profile
    assert profile is not None
    references, scales = cache.get(profile)
    current: dict[str, NumericHistogram | CategoryCounts] = dict(aggregates.features)
    if aggregates.score is not None:
        current[SCORE] = aggregates.score
    if aggregates.prediction is not None:
        current[PREDICTION] = aggregates.prediction
    current.update(aggregates.projections)  # each embedding's projections on the reference's components
    sizes = {name: values.n for name, values in current.items()}
    thresholds = {name: dict(values) for name, values in cache.thresholds(profile, sizes, alpha).items()}
    for name, values in (overrides or {}).items():
        thresholds.setdefault(name, {}).update(values)
    summary = evaluate_drift(
        key, references, current, scales=scales, thresholds=thresholds, reference_id=profile.lineage.content_sha256
    )
    if window == "tumbling":
        return summary
    return DriftSummary(
        [dataclasses.replace(r, window=window) for r in summary.rows],
        summary.findings,
        summary.drifted,
        summary.share_drifted,
    )


def operational_rows(
    key: WindowKey, aggregates: WindowAggregates, window: str, reference: str | None
) -> list[MetricRow]:
    """Volume, error rate and latency percentiles."""
    if not aggregates.requests:
        return []
    rows = [
        _row(key, "requests", aggregates.requests, window, reference),
        _row(key, "error_rate", aggregates.errors / aggregates.requests, window, reference),
    ]
    rows += [
        _row(key, f"latency_p{int(q * 100)}", aggregates.latency.quantile(q), window, reference)
        for q in (0.5, 0.95, 0.99)
    ]
    return rows


def multivariate_rows(
    key: WindowKey, aggregates: WindowAggregates, window: str, reference: str | None, threshold: float
) -> list[MetricRow]:
    """Multivariate drift: the window's mean reconstruction error of its events by the reference's PCA
    (``core.multivariate``) against ``threshold``, and how many numeric values were imputed for it."""
    counts = aggregates.multivariate
    if counts is None or not counts.n:
        return []
    return [
        key.row("multivariate_drift", counts.mean, window=window, reference=reference, threshold=threshold),
        key.row("multivariate_imputed", float(counts.imputed), window=window, reference=reference),
    ]


def embedding_rows(
    key: WindowKey, aggregates: WindowAggregates, cache: ReferenceCache, window: str, alpha: float
) -> list[MetricRow]:
    """Each embedding's drift: the distance between the window's mean vector and the reference's, Euclidean
    (``embedding_euclidean``) and cosine (``embedding_cosine``), each with the threshold a stationary window
    crosses with probability ``alpha``; and the vectors refused for their length (``embedding_wrong_length``).
    The embedding's name is the rows' ``feature``. (Its projections are drift features: see :func:`drift_of`.)"""
    profile = aggregates.profile
    if profile is None:
        return []
    reference_id = profile.lineage.content_sha256
    rows = []
    for name, counts in aggregates.embeddings.items():
        if counts.n:
            euclidean, cosine = mean_distances(aggregates.embedding_reference(name), counts.mean)
            limits = cache.embedding_thresholds(profile, name, counts.n, alpha)
            for metric, value, limit in (
                ("embedding_euclidean", euclidean, limits[0]),
                ("embedding_cosine", cosine, limits[1]),
            ):
                rows.append(
                    key.row(metric, value, feature=name, window=window, reference=reference_id, threshold=limit)
                )
        wrong = aggregates.embedding_wrong_length.get(name, 0)
        if wrong:
            rows.append(
                key.row("embedding_wrong_length", float(wrong), feature=name, window=window, reference=reference_id)
            )
    return rows


def estimated_rows(
    key: WindowKey, aggregates: WindowAggregates, window: str, reference: str | None, z: float, min_samples: int = 30
) -> list[MetricRow]:
    """Performance estimated from the window's predictions alone (CBPE, ``core.estimation``): rows
    ``estimated_<metric>`` overall and per slice, with bounds at ``z`` standard errors; each row's
    ``threshold`` is the reference's own estimate of the metric, which drop rules measure from."""
    profile = aggregates.profile
    if aggregates.estimate is None or profile is None or profile.calibration is None or not aggregates.estimate.n:
        return []
    calibration = profile.calibration
    probabilities = calibrated_probabilities(calibration.probabilities)
    baseline = calibration.reference_estimated
    return [
        key.row(
            metric,
            value,
            segment=segment,
            window=window,
            reference=reference,
            lower=bounds[0] if bounds else None,
            upper=bounds[1] if bounds else None,
            threshold=baseline.get(metric.removeprefix("estimated_")),
        )
        for metric, value, segment, bounds in aggregates.estimate.metrics(probabilities, z, min_samples)
    ]


@functools.lru_cache(maxsize=256)
def _probabilities_of(values: tuple[float, ...]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array(values, dtype=float)


def calibrated_probabilities(values: list[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A calibration's probabilities as an array, built once per calibration."""
    return _probabilities_of(tuple(values))


#: How far a window's quality may fall from the reference before it is a finding: missing and unseen
#: values may exceed the reference's own rates by 5 points; out-of-range values (by construction absent
#: from the reference) may reach 5%; type mismatches (a contract-valid value of the wrong kind) 1%.
QUALITY_MARGIN = 0.05
OUT_OF_RANGE_LIMIT = 0.05
TYPE_MISMATCH_LIMIT = 0.01


def quality_rows(
    key: WindowKey, aggregates: WindowAggregates, reference: str | None, min_count: int = 30, alpha: float = 0.01
) -> tuple[list[MetricRow], list[Finding]]:
    """Missing, type-mismatch, out-of-range and unseen rates per feature, each against its reference-based
    threshold, and a ``data_quality`` finding for each crossed with at least ``min_count`` values.

    A crossing is a finding only when the reference's own rate could not have given that many by chance
    (a binomial test at ``alpha``, the false-alert budget's rate per window): two missing values among
    thirty cross "1% + 5 points", and do so in 4% of windows of a feature missing 1% of the time.
    """
    rows: list[MetricRow] = []
    findings: list[Finding] = []
    profile = aggregates.profile
    for name, aggregate in aggregates.features.items():
        mismatched = aggregates.type_mismatch.get(name, 0)
        total = aggregate.n + aggregate.missing + mismatched
        if not total:
            continue
        expected = profile.features.get(name) if profile else None
        reference_missing = (
            expected.missing / (expected.count + expected.missing)
            if expected and (expected.count + expected.missing)
            else 0.0
        )
        # (metric, count, limit, the rate the reference itself gives)
        checks = [
            ("missing_rate", aggregate.missing, reference_missing + QUALITY_MARGIN, reference_missing),
            ("type_mismatch_rate", mismatched, TYPE_MISMATCH_LIMIT, 0.0),
        ]
        if isinstance(aggregate, NumericHistogram):
            # A value beyond the range of N reference values: 2 / (N + 1) of a continuous feature's values are.
            base = 2 / (expected.count + 1) if expected is not None else 0.0
            checks.append(("out_of_range_rate", aggregates.out_of_range.get(name, 0), OUT_OF_RANGE_LIMIT, base))
        else:
            other = (
                expected.counts[-1] / expected.count
                if isinstance(expected, CategoricalProfile) and expected.count
                else 0.0
            )
            checks.append(("unseen_rate", aggregate.unseen, other + QUALITY_MARGIN, other))
        for metric, count, limit, base in checks:
            value = count / total
            rows.append(key.row(metric, value, feature=name, threshold=limit, reference=reference))
            if total >= min_count and value > limit and float(binom.sf(count - 1, total, base)) < alpha:
                findings.append(
                    key.finding(
                        "data_quality",
                        "warning",
                        metric,
                        value,
                        limit,
                        feature=name,
                        reference=reference,
                        evidence={"values": total, "count": count, "reference_rate": round(base, 6)},
                    )
                )
    unknown = sum(aggregates.unknown_features.values())
    if unknown:
        # Values under names the reference does not know (a feature renamed upstream shows here, and as
        # missing under its old name). A row, not a finding: extra fields are common and harmless.
        rows.append(key.row("unknown_feature_values", float(unknown), reference=reference))
    return rows, findings
