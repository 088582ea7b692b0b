"""The monitoring pipeline: batches of raw event bytes in, metric rows and findings out.

It is pure (no broker, no database, no clock), so it is also the test entry
point for everything the workers will run: feed it bytes, read what it emits.
One pipeline serves one stream of events in order (a partition, or a replayed
file); windows from several pipelines merge exactly in storage.

Per ``(model, model_version, variant)`` and event-time window it keeps the
window's aggregates (``window_aggregates``). When a window closes it emits
metric rows and findings (``window_report``): drift per feature and score,
quality rates, volume, errors and latency, SLO burn rates and budget
(``slo_history``), a rolling view over the last windows, and river's change
detections. Labels are joined to predictions (``core.join``) and feed each
prediction window's performance and fairness (``performance``), reported as
event time moves on; canary and shadow predictions are paired with
production's (``divergence``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .core.categories import CategoryCounts
from .core.change import ChangeDetector
from .core.fairness import FOUR_FIFTHS
from .core.join import LabelJoin, Prediction
from .core.records import Finding, MetricRow, WindowKey
from .core.slo import SLO
from .core.windows import TumblingWindows, merged
from .decode import DeadLetter, decode_batch
from .divergence import Divergence, Twin, TwinJoin
from .performance import PerformanceAggregates, RegressionAggregates
from .profiles import ReferenceProfile
from .slo_history import SLOHistory
from .window_aggregates import WindowAggregates
from .window_report import ReferenceCache, drift_of, operational_rows, quality_rows

__all__ = ["DEFAULT_SLO", "Pipeline", "PipelineOutput"]

#: Used for a model with no SLO configured: 99.9% of requests OK within 300 ms over 30 days.
DEFAULT_SLO = SLO(target=0.999, latency_ms=300.0)


@dataclass
class PipelineOutput:
    rows: list[MetricRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    late_events: int = 0
    labels_received: int = 0
    labels_matched: int = 0


class Pipeline:
    """Windows of aggregates per model version and variant, judged against reference profiles.

    Parameters
    ----------
    profiles
        Reference profile per ``(model, model_version)``; a version without one
        still gets latency, error and volume metrics.
    window_ms, allowed_lateness_ms
        Tumbling window length and how late an event may be, in event time.
    label_horizon_ms
        How long after a prediction its label may come (default 24 hours).
    slices
        Segment-name combinations to report fairness on, per model, e.g.
        ``{"credit": [["gender"], ["gender", "region"]]}``; by default each
        segment of the model's reference profile on its own.
    min_samples
        Fewest labelled rows a slice needs before its rates are reported.
    slos
        The SLO per model; ``DEFAULT_SLO`` otherwise.
    detector
        river's detector (``page_hinkley``, ``adwin`` or ``kswin``) watching each
        window's error rate and each feature's drift statistic for changes.
    rolling_windows
        How many windows the rolling view merges (60 one-minute windows: "1h");
        below 2, no rolling view.
    tasks
        ``"regression"`` for models whose labels are numbers to compare (MAE,
        RMSE, bias); classification (the default) otherwise.
    thresholds
        Drift threshold overrides per model, feature and statistic (from the config).
    calibrate_for
        Calibrate every reference's thresholds for windows of this many values,
        so that a stationary stream rarely raises drift (see ``core.thresholds``).
    """

    def __init__(
        self,
        profiles: Mapping[tuple[str, str], ReferenceProfile] | None = None,
        *,
        window_ms: int = 60_000,
        allowed_lateness_ms: int = 10_000,
        label_horizon_ms: int = 86_400_000,
        slices: Mapping[str, Sequence[Sequence[str]]] | None = None,
        min_samples: int = 30,
        slos: Mapping[str, SLO] | None = None,
        detector: str = "page_hinkley",
        rolling_windows: int = 60,
        tasks: Mapping[str, str] | None = None,
        thresholds: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
        calibrate_for: int | None = None,
    ) -> None:
        self.profiles = dict(profiles or {})
        self.window_ms = window_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.label_horizon_ms = label_horizon_ms
        self.slices = dict(slices or {})
        self.min_samples = min_samples
        self.slos = dict(slos or {})
        self.join = LabelJoin(horizon_ms=label_horizon_ms)
        self._slo_history: dict[Any, SLOHistory] = {}
        self.twins = TwinJoin()
        self._challenged: set[str] = set()  # models that have shown a canary or shadow
        self.rolling_windows = rolling_windows
        self.tasks = dict(tasks or {})
        self._recent: dict[Any, deque[tuple[int, WindowAggregates]]] = {}
        self.thresholds = {
            model: {f: dict(v) for f, v in features.items()} for model, features in (thresholds or {}).items()
        }
        self._references = ReferenceCache(calibrate_for)
        self._unreported: set[tuple[Any, int]] = set()
        self.detector = detector
        self._detectors: dict[Any, ChangeDetector] = {}
        self._divergence: dict[tuple[Any, int], Divergence] = {}
        self._performance: dict[tuple[Any, int], PerformanceAggregates | RegressionAggregates] = {}
        self._windows: TumblingWindows[WindowAggregates] = TumblingWindows(
            window_ms,
            allowed_lateness_ms,
            factory=lambda key: WindowAggregates(self._profile_for(key), self.slos.get(key[0], DEFAULT_SLO)),
        )

    def _profile_for(self, key: Any) -> ReferenceProfile | None:
        model, version, _ = key
        if version is not None:
            return self.profiles.get((model, version))
        # A feature event need not name a version: use the model's profile if it has just one.
        candidates = [profile for (name, _), profile in self.profiles.items() if name == model]
        return candidates[0] if len(candidates) == 1 else None

    def process(self, raws: Sequence[bytes]) -> PipelineOutput:
        """Decode a batch, add it to its windows, and emit what the windows that closed say."""
        batch = decode_batch(raws)
        out = PipelineOutput(dead_letters=batch.dead_letters, labels_received=len(batch.labels))
        # Arrival order within the batch is kept: lateness must not depend on batching.
        events = batch.predictions + batch.features
        matches: list[tuple[str, Prediction, Any]] = []
        if events:
            routed = self._windows.route(np.fromiter((e.timestamp for e in events), np.int64, len(events)))
            out.late_events = int(routed.late.sum())
            groups: dict[tuple[tuple[str, str, str], int], list[Any]] = defaultdict(list)
            for event, start, late in zip(events, routed.starts.tolist(), routed.late.tolist(), strict=True):
                if not late:
                    key = (event.model, event.model_version, event.variant)
                    groups[key, start].append(event)
            for (key, start), members in groups.items():
                self._windows.window(key, start).update(members)
            for event, late in zip(events, routed.late.tolist(), strict=True):
                if not late and event.type == "prediction":
                    self._pair(event)
                if not late and event.type == "prediction" and event.prediction is not None:
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
        self._close_divergence(self._windows.watermark, out)
        self._expire()
        closed = self._windows.close_ready()
        if closed:
            # Performance is re-reported when event time moves past a window, not after every
            # batch: the fairness figures of every touched window are too costly to recompute
            # per batch, and labels keep coming for a day anyway.
            self._report_performance(out)
        self._emit(closed, out)
        return out

    def _pair(self, event: Any) -> None:
        """Pair canary and shadow predictions with production's for the same request.

        Production predictions are kept for pairing only once their model has shown a
        canary or shadow, so models without one cost nothing; the first few pairs of a
        new canary whose production twin came first are missed.
        """
        if event.variant != "production":
            self._challenged.add(event.model)
        elif event.model not in self._challenged:
            return
        twin = Twin(
            event.variant,
            event.model_version,
            event.prediction,
            event.score,
            event.latency_ms,
            event.timestamp,
        )
        for production, challenger in self.twins.add(event.model, event.request_id, twin):
            start = production.timestamp_ms - production.timestamp_ms % self.window_ms
            slot = ((event.model, challenger.version, challenger.variant, production.version), start)
            divergence = self._divergence.get(slot)
            if divergence is None:
                divergence = self._divergence[slot] = Divergence()
            divergence.update([(production, challenger)])

    def _close_divergence(self, watermark: int, out: PipelineOutput) -> None:
        for slot in sorted(s for s in self._divergence if s[1] + self.window_ms <= watermark):
            (model, version, variant, production_version), start = slot
            window = WindowKey(model, version, variant, start, start + self.window_ms)
            compared = (("production_version", production_version),)
            out.rows += [window.row(m, v, segment=compared) for m, v in self._divergence.pop(slot).metrics()]
        self.twins.expire(watermark - self.window_ms)

    def _slices_for(self, model: str, version: str) -> list[list[str]]:
        if model in self.slices:
            return [list(names) for names in self.slices[model]]
        profile = self.profiles.get((model, version))
        return [[name] for name in sorted({s.segment for s in profile.slices})] if profile else []

    def _score(self, matches: list[tuple[Any, Prediction, Any]]) -> None:
        """Add joined labels to their prediction windows."""
        touched: dict[tuple[Any, int], list[tuple[Prediction, Any]]] = defaultdict(list)
        for model, prediction, label in matches:
            key = (model, prediction.model_version, prediction.variant)
            touched[key, prediction.timestamp_ms - prediction.timestamp_ms % self.window_ms].append((prediction, label))
        for (key, start), pairs in touched.items():
            aggregates = self._performance.get((key, start))
            if aggregates is None:
                if self.tasks.get(key[0]) == "regression":
                    aggregates = self._performance[key, start] = RegressionAggregates()
                else:
                    profile = self.profiles.get(key[:2])
                    positive = (profile.positive_label if profile else None) or "1"
                    aggregates = self._performance[key, start] = PerformanceAggregates(
                        self._slices_for(*key[:2]), positive
                    )
            aggregates.update(pairs)
            self._unreported.add((key, start))

    def _report_performance(self, out: PipelineOutput) -> None:
        """The current performance and fairness of every window that got labels since the last report."""
        for key, start in sorted(self._unreported, key=lambda slot: (slot[1], str(slot[0]))):
            aggregates = self._performance.get((key, start))
            if aggregates is None:
                continue
            profile = self.profiles.get(key[:2])
            reference_id = profile.lineage.content_sha256 if profile else None
            window = WindowKey(*key, start, start + self.window_ms)
            for metric, value, segment, interval in aggregates.metrics(self.min_samples):
                low, high = interval if interval else (None, None)
                out.rows.append(
                    window.row(metric, value, segment=segment, reference=reference_id, lower=low, upper=high)
                )
            for names, ratio, evidence in aggregates.fairness_breaches(self.min_samples):
                low = evidence["lowest_slice"]
                out.findings.append(
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
        self._unreported.clear()

    def _watch(
        self, series: Any, key: WindowKey, value: float, out: PipelineOutput, feature: str | None = None
    ) -> None:
        """Feed one window's value to the series' river detector; a detection is a "change" finding."""
        detector = self._detectors.get(series)
        if detector is None:
            detector = self._detectors[series] = ChangeDetector(self.detector)
        detector.update(key.start_ms, value)
        if detector.drift_detected:
            metric = series[1] if feature is None else "drift"
            out.findings.append(
                key.finding(
                    "change",
                    "info",
                    metric,
                    value,
                    None,
                    feature=feature,
                    evidence={"detector": self.detector},
                )
            )

    def _slo(self, key: Any, window: WindowKey, aggregates: WindowAggregates, out: PipelineOutput) -> None:
        history = self._slo_history.get(key)
        if history is None:
            history = self._slo_history[key] = SLOHistory(aggregates.sli.slo, self.window_ms)
        history.add(window.start_ms, aggregates.sli)
        rows, alerts = history.report(window.end_ms)
        reference_id = aggregates.profile.lineage.content_sha256 if aggregates.profile else None
        out.rows += [window.row(metric, value, reference=reference_id) for metric, value in rows]
        for alert in alerts:
            out.findings.append(
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

    def _expire(self) -> None:
        watermark = self._windows.watermark
        self.join.expire(watermark)
        for slot in [s for s in self._performance if s[1] + self.window_ms + self.label_horizon_ms < watermark]:
            del self._performance[slot]

    def open_windows(self) -> dict[tuple[Any, int], WindowAggregates]:
        """The windows still open, by (key, start): the partials a runtime merges across partitions."""
        return dict(self._windows._open)

    def flush(self) -> PipelineOutput:
        """Close every open window (the end of a replayed file)."""
        out = PipelineOutput()
        self._report_performance(out)
        self._close_divergence(2**62, out)
        self._windows.advance_to(2**62)
        self._emit(self._windows.close_ready(), out)
        return out

    def _emit(self, closed: list[Any], out: PipelineOutput) -> None:
        for window in closed:
            (model, version, variant), start, end = window.key, window.start, window.end
            aggregates: WindowAggregates = window.aggregate
            key = WindowKey(model, version or "*", variant, start, end)  # feature events may name no version
            profile = aggregates.profile
            reference_id = profile.lineage.content_sha256 if profile else None
            out.rows += operational_rows(key, aggregates, "tumbling", reference_id)
            if aggregates.requests:
                self._slo(window.key, key, aggregates, out)
                self._watch((window.key, "error_rate"), key, aggregates.errors / aggregates.requests, out)
            if profile is not None:
                summary = drift_of(key, aggregates, self._references, "tumbling", self.thresholds.get(key.model))
                for drift_row in summary.rows:
                    # Each feature's deciding statistic: Wasserstein for numbers, Jensen-Shannon for categories.
                    deciding = (
                        "js"
                        if isinstance(aggregates.features.get(drift_row.feature or ""), CategoryCounts)
                        else "wasserstein"
                    )
                    if drift_row.feature is not None and drift_row.metric == deciding:
                        self._watch((window.key, drift_row.feature), key, drift_row.value, out, drift_row.feature)
                quality, issues = quality_rows(key, aggregates, reference_id)
                out.rows += summary.rows + quality
                out.findings += [
                    dataclasses.replace(f, evidence=f.evidence | {"example_request_ids": aggregates.examples})
                    for f in issues
                ]
                out.findings += [
                    dataclasses.replace(f, evidence=f.evidence | {"example_request_ids": aggregates.examples})
                    for f in summary.findings
                ]
            self._rolling(window.key, key, aggregates, out)

    def _rolling(self, slot_key: Any, key: WindowKey, aggregates: WindowAggregates, out: PipelineOutput) -> None:
        """The last ``rolling_windows`` windows merged into one view (drift over the last hour, say)."""
        if self.rolling_windows < 2:
            return
        history = self._recent.get(slot_key)
        if history is None:
            history = self._recent[slot_key] = deque(maxlen=self.rolling_windows)
        history.append((key.start_ms, aggregates))
        span = self.rolling_windows * self.window_ms
        members = [a for start, a in history if start >= key.end_ms - span]
        view = merged(members, WindowAggregates.merge, WindowAggregates.copy)
        label = _duration(span)
        rolling_key = WindowKey(key.model, key.model_version, key.variant, key.end_ms - span, key.end_ms)
        reference_id = view.profile.lineage.content_sha256 if view.profile else None
        out.rows += operational_rows(rolling_key, view, label, reference_id)
        if view.profile is not None:
            summary = drift_of(rolling_key, view, self._references, label, self.thresholds.get(key.model))
            out.rows += summary.rows


def _duration(ms: int) -> str:
    """A view's span as its metric rows name it: ``1h``, ``30m``, ``1d``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
