"""The second stage of the pipeline: judge complete windows.

A :class:`Reporter` receives the partials of complete windows (see
:mod:`streamwatch.pipeline.stage`), in order of window start per key, whole:
either straight from the one stage of a process, or merged across every
partition. For each it emits metric rows and findings: drift per feature and
score, quality rates, volume, errors and latency, SLO burn rates and budget
(``slo_history``), a rolling view over the last windows, river's change
detections, performance and fairness, and canary or shadow divergence.

Its state (the rolling views' recent windows, SLO history and detectors) is
per key and small, and depends only on the sequence of windows it was fed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from scipy.special import ndtr

from streamwatch.core.budget import VARIANTS, AlertBudget
from streamwatch.core.change import ChangeDetector
from streamwatch.core.estimation import ESTIMATED_METRICS, EstimateCounts, calibration_variance, expected_correct
from streamwatch.core.fairness import FOUR_FIFTHS, normal_quantile
from streamwatch.core.multiclass import MulticlassAggregates
from streamwatch.core.performance import PerformanceAggregates
from streamwatch.core.records import PERFORMANCE_VIEW, Finding, MetricRow, Segment, WindowKey
from streamwatch.core.slo import MIN_BURN_EVENTS
from streamwatch.core.slo_history import SLOHistory
from streamwatch.core.windows import SlidingMerge
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.stage import Partial, Performance
from streamwatch.pipeline.window_report import (
    ReferenceCache,
    calibrated_probabilities,
    drift_of,
    embedding_rows,
    estimated_rows,
    multivariate_rows,
    operational_rows,
    quality_rows,
)
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["VIEW_MIN_GAP", "Reporter"]

#: The smallest gap between slices the performance view looks for when it picks its span (see
#: ``Reporter._performance_view``); the default parity rules breach at the same gap.
VIEW_MIN_GAP = 0.05


class Reporter:
    """Metric rows and findings of complete windows.

    Parameters as for :class:`~streamwatch.pipeline.pipeline.Pipeline`.
    """

    def __init__(
        self,
        profiles: Mapping[tuple[str, str], ReferenceProfile],
        *,
        window_ms: int,
        min_samples: int = 30,
        detector: str = "page_hinkley",
        rolling_windows: int = 60,
        thresholds: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
        calibrate_for: int | Literal["auto"] | None = None,
        budget: AlertBudget | None = None,
        performance_view_ms: int = 0,
    ) -> None:
        self.profiles = profiles
        self.window_ms = window_ms
        self.min_samples = min_samples
        self.detector = detector
        self.rolling_windows = rolling_windows
        self.thresholds = dict(thresholds or {})
        self.budget = budget or AlertBudget()
        self.performance_view_ms = performance_view_ms
        self._references = ReferenceCache(calibrate_for)
        self._slo_history: dict[Any, SLOHistory] = {}
        self._detectors: dict[Any, ChangeDetector] = {}
        self._recent: dict[Any, deque[tuple[int, WindowAggregates]]] = {}
        self._last_seen: dict[Any, int] = {}  # (model, version, variant) -> start of its latest window
        # The rolling views' windows merged incrementally (derived from _recent, so not checkpointed).
        self._sliding: dict[Any, SlidingMerge[WindowAggregates]] = {}
        # Per (model, version, variant), the latest performance of each recent prediction window, oldest first.
        self._performance_recent: dict[Any, list[tuple[int, Performance]]] = {}
        # Per (model, version, variant), the estimate counts of the windows in the performance view's span.
        self._estimates_recent: dict[Any, list[tuple[int, EstimateCounts]]] = {}

    def state(self) -> dict[str, Any]:
        """What the reporter remembers between windows, for a checkpoint (see :meth:`restore`)."""
        return {
            "slo": self._slo_history,
            "detectors": self._detectors,
            "recent": self._recent,
            "last_seen": self._last_seen,
            "performance_recent": self._performance_recent,
            "estimates_recent": self._estimates_recent,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._slo_history = state["slo"]
        # Only the error rate's detectors run now (see _window); older checkpoints also hold drift series'.
        self._detectors = {k: v for k, v in state["detectors"].items() if k[1] == "error_rate"}
        self._recent = state["recent"]
        self._sliding = {}
        self._last_seen = state.get("last_seen", {})  # (checkpoints from before versions retired have none)
        self._performance_recent = state.get("performance_recent", {})
        self._estimates_recent = state.get("estimates_recent", {})  # (checkpoints before estimates have none)

    def retire(self, before_ms: int) -> list[Any]:
        """Forget the model versions (and variants) with no window starting at or after ``before_ms``.

        A version rolled out of service would otherwise keep its SLO history, detectors and rolling
        view in every checkpoint forever. Returns the ``(model, version, variant)`` keys forgotten; one
        that comes back starts afresh, like a new version.
        """
        gone = [key for key, last in self._last_seen.items() if last < before_ms]
        if not gone:
            return []
        retired = set(gone)
        for key in gone:
            del self._last_seen[key]
            self._slo_history.pop(key, None)
            self._recent.pop(key, None)
            self._sliding.pop(key, None)
            self._performance_recent.pop(key, None)
            self._estimates_recent.pop(key, None)
        self._detectors = {k: v for k, v in self._detectors.items() if k[0] not in retired}
        return gone

    def report(
        self,
        partial: Partial,
        rows: list[MetricRow],
        findings: list[Finding],
        examples: dict[tuple[str, str, str, int], list[str]] | None = None,
        view: list[MetricRow] | None = None,
    ) -> None:
        """Append what one complete partial says to ``rows`` and ``findings`` (and its request ids to ``examples``,
        and the performance view's rows to ``view``: without it, no view is computed)."""
        self.report_many([partial], rows, findings, examples, view)

    def report_many(
        self,
        partials: Sequence[Partial],
        rows: list[MetricRow],
        findings: list[Finding],
        examples: dict[tuple[str, str, str, int], list[str]] | None = None,
        view: list[MetricRow] | None = None,
    ) -> None:
        """:meth:`report` for several partials, in order, with one performance view per model version and
        variant whose labels changed, whatever the number of windows they reached: the view ends at the
        newest window, and labels trickling into thirty windows would otherwise recompute it thirty times."""
        changed: dict[Any, str | None] = {}
        for partial in partials:
            self._report_one(partial, rows, findings, examples, changed if view is not None else None, view)
        if view is not None:
            for key, reference_id in changed.items():
                self._performance_view(key, reference_id, view)

    def _report_one(
        self,
        partial: Partial,
        rows: list[MetricRow],
        findings: list[Finding],
        examples: dict[tuple[str, str, str, int], list[str]] | None,
        changed: dict[Any, str | None] | None,
        view: list[MetricRow] | None = None,
    ) -> None:
        slot = tuple(partial.key[:3])
        self._last_seen[slot] = max(self._last_seen.get(slot, partial.start), partial.start)
        if partial.kind == "window":
            self._window(partial.key, partial.start, partial.aggregate, rows, findings, view)
            if examples is not None and partial.aggregate.examples:
                model, version, variant = partial.key
                examples[(model, version or "*", variant, partial.start)] = list(partial.aggregate.examples)
        elif partial.kind == "performance":
            self._performance(partial.key, partial.start, partial.aggregate, rows, findings, changed)
        else:
            model, version, variant, production_version = partial.key
            window = WindowKey(model, version, variant, partial.start, partial.start + self.window_ms)
            compared = (("production_version", production_version),)
            # A rate without the pairs it needs is NaN (core.divergence): not reported, as a slice too small is not.
            rows += [window.row(m, v, segment=compared) for m, v in partial.aggregate.metrics() if not math.isnan(v)]

    def _performance(
        self,
        key: Any,
        start: int,
        aggregates: Performance,
        rows: list[MetricRow],
        findings: list[Finding],
        changed: dict[Any, str | None] | None = None,
    ) -> None:
        """The current performance and fairness of a prediction window; with ``changed``, the window is kept
        for the performance view, and its key marked for a new view."""
        profile = self.profiles.get(key[:2])
        reference_id = profile.lineage.content_sha256 if profile else None
        model, version, variant = key
        window = WindowKey(model, version, variant, start, start + self.window_ms)
        rows += _metric_rows(window, aggregates.metrics(self.min_samples), reference_id)
        rows += self._estimate_error_rows(window, aggregates, reference_id)
        if changed is not None and self._remember(key, start, aggregates):
            changed[key] = reference_id
        alpha = 0.05
        if isinstance(aggregates, PerformanceAggregates | MulticlassAggregates):
            slices = _compared(aggregates)
            alpha = self.budget.alpha("fairness", max(2, slices) * VARIANTS, self.window_ms, 1)
        for names, ratio, evidence in aggregates.fairness_breaches(self.min_samples, alpha):
            low = evidence["lowest_slice"]
            findings.append(
                window.finding(
                    "fairness",
                    "warning",
                    "demographic_parity_ratio",
                    ratio,
                    FOUR_FIFTHS,
                    segment=tuple(sorted(low.items())),
                    evidence=evidence | {"segments": list(names)},
                    reference=reference_id,
                )
            )

    def _remember(self, key: Any, start: int, aggregates: Performance) -> bool:
        """Keep (a copy of) a prediction window's performance for the view; whether there is a view."""
        cap = self.performance_view_ms // self.window_ms
        if cap < 1:
            return False
        recent = [(s, a) for s, a in self._performance_recent.get(key, []) if s != start]
        recent.append((start, aggregates.copy()))  # the stage goes on adding labels to its own
        recent.sort(key=lambda pair: pair[0])
        newest = recent[-1][0]
        self._performance_recent[key] = [(s, a) for s, a in recent if s > newest - 4 * cap * self.window_ms]
        return True

    def _performance_view(self, key: Any, reference_id: str | None, rows: list[MetricRow]) -> None:
        """Performance over the predictions of a trailing span up to this window's end: the performance view.

        A minute holds too few labelled requests per slice to see a small gap: ~60 labelled negatives give
        an FPR interval of +-0.12, half an hour of them +-0.02. A long span dilutes a sudden large gap,
        though. So the view scans spans of 1, 2, 4, ... windows up to ``performance_view_ms`` and reports
        the shortest in which a slice is :data:`VIEW_MIN_GAP` worse than the best with intervals apart, or
        the longest: a multi-scale test whose false-positive rate is split between its spans (see
        :meth:`_confidence`). The default performance and fairness rules judge this view (rows with
        ``window="performance"``). Windows are kept for four spans, so labels up to three spans late still
        reach the views; later ones reach only their window's rows.

        The view's rows go to the alert rules, and are not stored: a view's value depends on which labels
        had come when it was computed, so unlike every stored row it would differ between two runs of one
        stream batched or partitioned differently. Alerts carry its values as their evidence.
        """
        cap = self.performance_view_ms // self.window_ms
        recent = self._performance_recent[key]
        start = recent[-1][0]  # the newest prediction window with labels
        end = start + self.window_ms
        by_start = dict(recent)
        spans = [1 << k for k in range(cap.bit_length()) if 1 << k < cap] + [cap]
        view: Performance | None = None
        covered = 0
        for span in spans:
            for back in range(covered, span):  # widen the view one window at a time, newest first
                member = by_start.get(start - back * self.window_ms)
                if member is not None:
                    view = member.copy() if view is None else _merged_into(view, member)
            covered = span
            assert view is not None  # the window itself is always a member
            confidence = self._confidence(view, span * self.window_ms, len(spans))
            if span == cap or (
                isinstance(view, PerformanceAggregates | MulticlassAggregates)
                and view.parity_gap_seen(self.min_samples, confidence, VIEW_MIN_GAP)
            ):
                break
        assert view is not None
        model, version, variant = key
        window = WindowKey(model, version, variant, end - covered * self.window_ms, end)
        rows += _metric_rows(window, view.metrics(self.min_samples, confidence), reference_id, PERFORMANCE_VIEW)
        rows += self._estimate_error_rows(window, view, reference_id, PERFORMANCE_VIEW, covered)

    def _confidence(self, view: Performance, span_ms: int, spans: int = 1) -> float:
        """The confidence of the intervals fairness is judged by, from the false-alert budget.

        Two slices differ significantly when their intervals do not overlap; for two intervals of equal
        width at ``z`` that is a two-sided test at ``z * sqrt(2)``. The test's rate is the budget's
        fairness share over the series (slices x three rates x variants x the ``spans`` a view scans)
        and the independent spans a week holds (one per span: a view's, or a window), so each interval
        takes ``z = z_test / sqrt(2)``: 99.8% for six slices and a 30-minute span at one false alert a week.
        """
        if not isinstance(view, PerformanceAggregates | MulticlassAggregates):
            return 0.95
        slices = _compared(view)
        alpha = self.budget.alpha("fairness", max(2, slices) * 3 * VARIANTS * spans, span_ms, 1)
        return _interval_confidence(alpha)

    def _window(
        self,
        slot_key: Any,
        start: int,
        aggregates: WindowAggregates,
        rows: list[MetricRow],
        findings: list[Finding],
        view: list[MetricRow] | None = None,
    ) -> None:
        model, version, variant = slot_key
        key = WindowKey(
            model, version or "*", variant, start, start + self.window_ms
        )  # feature events may name no version
        profile = aggregates.profile
        reference_id = profile.lineage.content_sha256 if profile else None
        rows += operational_rows(key, aggregates, "tumbling", reference_id)
        if aggregates.requests:
            self._slo(slot_key, key, aggregates, rows, findings)
            if aggregates.requests >= MIN_BURN_EVENTS:
                # River's detector watches the error rate only, and only windows with enough requests for a
                # rate: a drift statistic's series is judged per window against thresholds calibrated under
                # the false-alert budget, and Page-Hinkley on those noisy series raised 10 false alerts a day.
                self._watch((slot_key, "error_rate"), key, aggregates.errors / aggregates.requests, findings)
        if profile is not None:
            alpha = self._drift_alpha(profile)
            summary = drift_of(key, aggregates, self._references, "tumbling", self.thresholds.get(key.model), alpha)
            quality, issues = quality_rows(key, aggregates, reference_id, alpha=self._quality_alpha(profile))
            rows += summary.rows + quality
            rows += estimated_rows(key, aggregates, "tumbling", reference_id, self._estimate_z(aggregates))
            if aggregates.multivariate is not None and aggregates.multivariate.n:
                threshold = self._references.reconstruction_threshold(profile, aggregates.multivariate.n, alpha)
                rows += multivariate_rows(key, aggregates, "tumbling", reference_id, threshold)
                rows += self._multivariate_slices(key, aggregates, reference_id, alpha)
            rows += embedding_rows(key, aggregates, self._references, "tumbling", alpha)
            if view is not None:
                self._estimated_view(slot_key, key, aggregates, view)
            examples = {"example_request_ids": aggregates.examples}
            findings += [dataclasses.replace(f, evidence=f.evidence | examples) for f in issues + summary.findings]
        self._rolling(slot_key, key, aggregates, rows)

    def _multivariate_slices(
        self, key: WindowKey, aggregates: WindowAggregates, reference_id: str | None, alpha: float
    ) -> list[MetricRow]:
        """Multivariate drift per slice (``multivariate_drift`` rows with the slice as ``segment``), for the
        slices with at least ``min_samples`` events; they share one series' false-alert rate (``alpha``
        split evenly), so that slicing a model does not multiply its false alerts."""
        if aggregates.multivariate_slices is None:
            return []
        judged = {
            segment: counts
            for segment, counts in aggregates.multivariate_slices.by_slice().items()
            if counts.n >= self.min_samples
        }
        if not judged or aggregates.profile is None:
            return []
        share = alpha / len(judged)
        return [
            key.row(
                "multivariate_drift",
                counts.mean,
                segment=segment,
                reference=reference_id,
                threshold=self._references.reconstruction_threshold(aggregates.profile, counts.n, share),
            )
            for segment, counts in judged.items()
        ]

    def _drift_alpha(self, profile: ReferenceProfile) -> float:
        """Each feature's (and the score's) false-positive rate per window, under the budget's drift share."""
        judged = len(profile.features) + (profile.score is not None) + (profile.prediction is not None)
        # each embedding: its projections (drift features) and its mean's two distances
        embedded = sum(len(e.projections) + 2 for e in profile.embeddings.values())
        series = (judged + (profile.multivariate is not None) + embedded) * VARIANTS
        return self.budget.alpha("drift", series, self.window_ms)

    def _quality_alpha(self, profile: ReferenceProfile) -> float:
        """Each quality rate's false-positive rate per window: three rates per feature (missing, type,
        range or unseen)."""
        return self.budget.alpha("data_quality", 3 * len(profile.features) * VARIANTS, self.window_ms)

    def _watch(
        self, series: Any, key: WindowKey, value: float, findings: list[Finding], feature: str | None = None
    ) -> None:
        """Feed one window's value to the series' river detector; a detection is a "change" finding."""
        detector = self._detectors.get(series)
        if detector is None:
            detector = self._detectors[series] = ChangeDetector(self.detector)
        detector.update(key.start_ms, value)
        if detector.drift_detected:
            metric = series[1] if feature is None else "drift"
            findings.append(
                key.finding(
                    "change", "info", metric, value, None, feature=feature, evidence={"detector": self.detector}
                )
            )

    def _slo(
        self,
        slot_key: Any,
        window: WindowKey,
        aggregates: WindowAggregates,
        rows: list[MetricRow],
        findings: list[Finding],
    ) -> None:
        history = self._slo_history.get(slot_key)
        if history is None:
            history = self._slo_history[slot_key] = SLOHistory(aggregates.sli.slo, self.window_ms)
        history.add(window.start_ms, aggregates.sli)
        burn_rows, alerts = history.report(window.end_ms)
        reference_id = aggregates.profile.lineage.content_sha256 if aggregates.profile else None
        rows += [window.row(metric, value, reference=reference_id) for metric, value in burn_rows]
        for alert in alerts:
            findings.append(
                window.finding(
                    "slo",
                    "critical" if alert.severity == "page" else "warning",
                    f"burn_rate_{alert.long_minutes}m",
                    alert.long_burn_rate,
                    alert.factor,
                    evidence={
                        "severity": alert.severity,
                        "long_minutes": alert.long_minutes,
                        "short_minutes": alert.short_minutes,
                        "short_burn_rate": alert.short_burn_rate,
                        "example_request_ids": aggregates.examples,
                    },
                )
            )

    def _rolling(self, slot_key: Any, key: WindowKey, aggregates: WindowAggregates, rows: list[MetricRow]) -> None:
        """The last ``rolling_windows`` windows merged into one view (drift over the last hour, say)."""
        if self.rolling_windows < 2:
            return
        history = self._recent.get(slot_key)
        if history is None:
            history = self._recent[slot_key] = deque(maxlen=self.rolling_windows)
        history.append((key.start_ms, aggregates))
        span = self.rolling_windows * self.window_ms
        sliding = self._sliding.get(slot_key)
        if sliding is None:  # (after a restore: rebuilt from the windows the checkpoint kept)
            sliding = self._sliding[slot_key] = SlidingMerge(WindowAggregates.merge, WindowAggregates.copy)
            for start, kept in history:
                sliding.push(start, kept)
        else:
            sliding.push(key.start_ms, aggregates)
        sliding.drop_before(key.end_ms - span)
        view = sliding.value()  # shared with the structure: the rows below only read it
        label = duration_label(span)
        rolling_key = WindowKey(key.model, key.model_version, key.variant, key.end_ms - span, key.end_ms)
        reference_id = view.profile.lineage.content_sha256 if view.profile else None
        rows += operational_rows(rolling_key, view, label, reference_id)
        if view.profile is not None:
            alpha = self._drift_alpha(view.profile)
            rows += drift_of(rolling_key, view, self._references, label, self.thresholds.get(key.model), alpha).rows
            rows += estimated_rows(rolling_key, view, label, reference_id, self._estimate_z(view, self.rolling_windows))

    def _estimate_z(self, aggregates: WindowAggregates, windows: int = 1) -> float:
        """Standard errors of the estimates' bounds: NannyML's three, or more when the false-alert budget's
        performance share asks for more (the estimated drop rule judges the upper bound), for every estimated
        metric of every slice of every variant (over ``windows`` windows, for a rolling view)."""
        estimate = aggregates.estimate
        slices = 1 + (len(estimate.by_slice()) if estimate is not None else 0)
        series = slices * len(ESTIMATED_METRICS) * VARIANTS
        return _z_for(self.budget.alpha("performance", series, self.window_ms * windows))

    def _estimate_error_rows(
        self,
        window: WindowKey,
        aggregates: Any,
        reference_id: str | None,
        view: str = "tumbling",
        windows: int = 1,
    ) -> list[MetricRow]:
        """How far the realized accuracy of labelled predictions is from what the estimate said of exactly
        those predictions: rows ``estimate_error`` (|realized - estimated|, overall and per slice), whose
        ``threshold`` is the estimate's bound at the same ``z`` as the estimated rows. Beyond it, the
        estimate's assumption broke for them (concept drift, or scores no longer calibrated)."""
        if not isinstance(aggregates, PerformanceAggregates) or aggregates.estimate is None:
            return []
        profile = self.profiles.get((window.model, window.model_version))
        if profile is None or profile.calibration is None or aggregates.estimate_correct is None:
            return []
        probabilities = calibrated_probabilities(profile.calibration.probabilities)
        populations: list[tuple[Segment, Any, Any]] = [
            ((), aggregates.estimate.overall, aggregates.estimate_correct.overall)
        ]
        correct_by_slice = aggregates.estimate_correct.by_slice()
        for segment, counts in aggregates.estimate.by_slice().items():
            if int(counts.sum()) >= self.min_samples:
                populations.append((segment, counts, correct_by_slice.get(segment, 0 * counts)))
        # A view is recomputed at every window close over nearly the same predictions: consecutive views are
        # not independent trials, so the test gets no credit for `for` (it is two-sided: |realized - estimated|).
        for_windows = 1 if view == PERFORMANCE_VIEW else None
        alpha = self.budget.alpha("performance", len(populations) * VARIANTS, self.window_ms * windows, for_windows)
        z = _z_for(alpha / 2)
        reference_counts = profile.score.counts if profile.score is not None else []
        out = []
        for segment, counts, correct in populations:
            n = int(counts.sum())
            if not n:
                continue
            expected, sampling = expected_correct(counts, probabilities)
            expected /= n
            realized = int(correct.sum()) / n
            # The labels' sampling error, and the calibration's own (which a long view does not average away).
            variance = sampling + calibration_variance(counts, probabilities, reference_counts)
            half = z * math.sqrt(variance) / n
            out.append(
                window.row(
                    "estimate_error",
                    abs(realized - expected),
                    segment=segment,
                    threshold=half,
                    reference=reference_id,
                    lower=expected - half,
                    upper=expected + half,
                    window=view,
                )
            )
        return out

    def _estimated_view(
        self, slot_key: Any, key: WindowKey, aggregates: WindowAggregates, rows: list[MetricRow]
    ) -> None:
        """Performance estimated over a trailing span of windows, before labels: the estimated rows of the
        performance view, which ``estimated-performance-drop`` judges.

        A window of 100 predictions estimates a ROC AUC within +-0.15 (three standard errors): a real drop of
        0.1 hides in it, and shows in half an hour of windows. A long span dilutes a sudden drop, though. So,
        as the labelled view does, the view scans spans of 1, 2, 4, ... windows up to ``performance_view_ms``
        and reports the shortest in which some estimate's upper bound is :data:`VIEW_MIN_GAP` under the
        reference's own estimate, or else the longest; its bounds are at the false-alert budget's rate split
        over the spans, with no credit for ``for`` (consecutive views share most of their predictions).
        """
        cap = self.performance_view_ms // self.window_ms
        profile = aggregates.profile
        if cap < 1 or aggregates.estimate is None or profile is None or profile.calibration is None:
            return
        recent = [
            (s, e) for s, e in self._estimates_recent.get(slot_key, []) if s > key.start_ms - cap * self.window_ms
        ]
        recent.append((key.start_ms, aggregates.estimate))  # read only: the window is complete
        self._estimates_recent[slot_key] = recent
        by_start = dict(recent)
        probabilities = calibrated_probabilities(profile.calibration.probabilities)
        baseline = profile.calibration.reference_estimated
        spans = [1 << k for k in range(cap.bit_length()) if 1 << k < cap] + [cap]
        view: Any = None
        covered = 0
        # (metric, slice) -> (span, value, bounds): each series settles on the shortest span that shows a drop,
        # or the longest (one span for every series would let one slice's short drop hide another's long one).
        chosen: dict[tuple[str, Segment], tuple[int, float, tuple[float, float] | None]] = {}
        settled: set[tuple[str, Segment]] = set()
        for span in spans:
            for back in range(covered, span):
                member = by_start.get(key.start_ms - back * self.window_ms)
                if member is not None:
                    if view is None:
                        view = member.copy()
                    else:
                        view.merge(member)
            covered = span
            populations = 1 + sum(1 for c in view.by_slice().values() if int(c.sum()) >= self.min_samples)
            series = populations * len(ESTIMATED_METRICS) * VARIANTS * len(spans)
            z = _z_for(self.budget.alpha("performance", series, span * self.window_ms, 1))
            for metric, value, segment, bounds in view.metrics(probabilities, z, self.min_samples):
                if (metric, segment) in settled:
                    continue
                chosen[metric, segment] = (span, value, bounds)
                reference = baseline.get(metric.removeprefix("estimated_"))
                if bounds is not None and reference is not None and bounds[1] < reference - VIEW_MIN_GAP:
                    settled.add((metric, segment))
        reference_id = profile.lineage.content_sha256
        for (metric, segment), (span, value, bounds) in chosen.items():
            start = key.end_ms - span * self.window_ms
            window = WindowKey(key.model, key.model_version, key.variant, start, key.end_ms)
            rows.append(
                window.row(
                    metric,
                    value,
                    segment=segment,
                    reference=reference_id,
                    lower=bounds[0] if bounds else None,
                    upper=bounds[1] if bounds else None,
                    threshold=baseline.get(metric.removeprefix("estimated_")),
                    window=PERFORMANCE_VIEW,
                )
            )


def _metric_rows(
    window: WindowKey, metrics: Iterable[tuple[Any, ...]], reference_id: str | None, label: str = "tumbling"
) -> list[MetricRow]:
    """Rows of performance figures ``(metric, value, segment, interval[, feature])``, as aggregates give them."""
    rows = []
    for metric, value, segment, interval, *feature in metrics:
        low, high = interval if interval else (None, None)
        rows.append(
            window.row(
                metric,
                value,
                segment=segment,
                reference=reference_id,
                lower=low,
                upper=high,
                window=label,
                feature=feature[0] if feature else None,
            )
        )
    return rows


@functools.lru_cache(maxsize=1024)
def _z_for(alpha: float) -> float:
    """Standard errors of a one-sided test at ``alpha``, at least three (NannyML's bounds)."""
    return max(3.0, -normal_quantile(alpha))


@functools.lru_cache(maxsize=1024)
def _interval_confidence(alpha: float) -> float:
    """The confidence of two intervals whose not overlapping is a two-sided test at ``alpha`` (see
    ``Reporter._confidence``); computed once per alpha (scipy's ``norm`` costs ~100 µs a call)."""
    z = -normal_quantile(alpha / 2) / math.sqrt(2)  # norm.isf(alpha / 2) / sqrt(2)
    return max(0.95, float(1 - 2 * ndtr(-z)))  # 1 - 2 * norm.sf(z)


def duration_label(ms: int) -> str:
    """A view's span as its metric rows name it: ``1h``, ``30m``, ``1d``.

    >>> duration_label(3_600_000), duration_label(90_000)
    ('1h', '90s')
    """
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _compared(aggregates: PerformanceAggregates | MulticlassAggregates) -> int:
    """The slices whose rates fairness compares: each slice, and for a multiclass model each slice of each
    class (one versus the rest)."""
    if isinstance(aggregates, MulticlassAggregates):
        return len(aggregates.by_slice()) * max(1, len(aggregates.class_names))
    return sum(len(aggregates.confusion.by_slice(list(names))) for names in aggregates.confusion.slices)


def _merged_into(into: Performance, other: Performance) -> Performance:
    into.merge(other)  # type: ignore[arg-type]  # one model's windows are all of its task's kind
    return into
