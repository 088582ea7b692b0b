"""The monitoring pipeline: batches of raw event bytes in, metric rows and findings out.

It is pure (no broker, no database, no clock), so it is also the test entry
point for everything the workers run: feed it bytes, read what it emits. One
pipeline serves one stream of events in order (a partition, or a replayed
file).

It is two stages in one object: a :class:`~streamwatch.pipeline.stage.PartitionStage`
accumulates windows, joins labels to predictions and pairs canary or shadow
predictions with production's, and hands the partials of complete windows to
a :class:`~streamwatch.pipeline.reporter.Reporter`, which judges them. A worker running
many partitions puts :class:`~streamwatch.pipeline.merge.PartialMerger` between
the two, so that its results equal this pipeline's on the whole stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from streamwatch.contract.decode import DeadLetter
from streamwatch.core.budget import AlertBudget
from streamwatch.core.multiclass import MulticlassAggregates
from streamwatch.core.performance import PerformanceAggregates, RegressionAggregates
from streamwatch.core.records import Finding, MetricRow
from streamwatch.core.slo import SLO
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.reporter import Reporter
from streamwatch.pipeline.stage import Partial, PartitionStage, Performance, StageOutput
from streamwatch.profiles.model import ReferenceProfile

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
    #: Events screened out or held back, by reason (see ``StageOutput.screened``).
    screened: dict[str, int] = field(default_factory=dict)
    #: (model, version, variant, window start) -> a few request ids of that window, as alert evidence.
    examples: dict[tuple[str, str, str, int], list[str]] = field(default_factory=dict)
    #: The performance view's rows, for the alert rules: judged, never stored (unlike ``rows``, their values
    #: depend on when labels came, not only on the stream; see ``Reporter._performance_view``).
    view: list[MetricRow] = field(default_factory=list)


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
        or ``"auto"``: for each window's own size, so that a stationary stream
        rarely raises drift, however small its windows (see ``core.thresholds``).
    max_lead_ms, admit, max_per_request
        What a stage screens (see :class:`~streamwatch.pipeline.stage.PartitionStage`):
        how far one event may move event time on its own, which model versions are
        monitored, and how many predictions may share a request id.
    budget
        The false-alert budget (``core.budget``) the drift and quality thresholds are set from.
    performance_view_ms
        Also report performance and fairness over the predictions of this trailing span
        (rows with ``window="performance"``); 0 for none.
    performance_interval_ms
        How often, in event time, a window whose labels keep coming is reported again (see
        :class:`~streamwatch.pipeline.stage.PartitionStage`); 0: whenever a window closes.
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
        calibrate_for: int | Literal["auto"] | None = None,
        max_lead_ms: int | None = None,
        admit: Callable[[str, str | None], bool] | None = None,
        max_per_request: int = 16,
        budget: AlertBudget | None = None,
        performance_view_ms: int = 0,
        performance_interval_ms: int = 0,
    ) -> None:
        self.profiles = dict(profiles or {})
        self.window_ms = window_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.label_horizon_ms = label_horizon_ms
        self.slices = dict(slices or {})
        self.min_samples = min_samples
        self.slos = dict(slos or {})
        self.detector = detector
        self.rolling_windows = rolling_windows
        self.tasks = dict(tasks or {})
        self.thresholds = {
            model: {f: dict(v) for f, v in features.items()} for model, features in (thresholds or {}).items()
        }
        self.calibrate_for = calibrate_for
        self.max_lead_ms = max_lead_ms
        self.admit = admit
        self.max_per_request = max_per_request
        self.performance_interval_ms = performance_interval_ms
        self.performance_view_ms = performance_view_ms
        self._edges: dict[int, tuple[ReferenceProfile, np.ndarray[Any, np.dtype[np.float64]]]] = {}
        self.stage = self.new_stage()
        self.reporter = Reporter(
            self.profiles,
            window_ms=window_ms,
            min_samples=min_samples,
            detector=detector,
            rolling_windows=rolling_windows,
            thresholds=self.thresholds,
            calibrate_for=calibrate_for,
            budget=budget,
            performance_view_ms=performance_view_ms,
        )

    def new_stage(self) -> PartitionStage:
        """A first stage with this pipeline's settings: a worker makes one per partition."""
        return PartitionStage(
            self.new_window,
            self.new_performance,
            window_ms=self.window_ms,
            allowed_lateness_ms=self.allowed_lateness_ms,
            label_horizon_ms=self.label_horizon_ms,
            max_lead_ms=self.max_lead_ms,
            admit=self.admit,
            max_per_request=self.max_per_request,
            performance_interval_ms=self.performance_interval_ms,
            fresh_ms=self.performance_view_ms,
        )

    def new_window(self, key: Any) -> WindowAggregates:
        """Empty aggregates for a window of ``(model, version, variant)``."""
        profile = self._profile_for(key)
        # (slices are counted for what is reported per slice: estimated performance and multivariate drift)
        sliced = profile is not None and (profile.calibration is not None or profile.multivariate is not None)
        slices = self._slices_for(key) if sliced else ()
        return WindowAggregates(profile, self.slos.get(key[0], DEFAULT_SLO), slices)

    def new_performance(self, key: Any) -> Performance:
        """Empty performance aggregates of a prediction window of ``(model, version, variant)``, by the
        model's task: errors of a regression, a confusion matrix of a multiclass model, or a binary
        classifier's confusion counts (with the counts that check its estimate, when the reference
        calibrated its score)."""
        profile = self.profiles.get(key[:2])
        task = self.task(key[0], profile)
        if task == "regression":
            return RegressionAggregates()
        if task == "multiclass_classification":
            return MulticlassAggregates(self._slices_for(key), (profile.classes or []) if profile else [])
        edges = None
        if profile is not None and profile.calibration is not None and profile.score is not None:
            cached = self._edges.get(id(profile))
            if cached is None or cached[0] is not profile:
                cached = self._edges[id(profile)] = (profile, np.asarray(profile.score.edges, dtype=float))
            edges = cached[1]  # one array shared by every window of the version (and written once per checkpoint)
        return PerformanceAggregates(self._slices_for(key), self._positive_label(key), edges)

    def task(self, model: str, profile: ReferenceProfile | None = None) -> str:
        """A model's task: as configured, or else as its reference profile states, or else binary."""
        return self.tasks.get(model) or (profile.task if profile and profile.task else "binary_classification")

    @property
    def join(self) -> Any:
        """The label join of the (single) stage, for its counters."""
        return self.stage.join

    def _profile_for(self, key: Any) -> ReferenceProfile | None:
        model, version, _ = key
        if version is not None:
            return self.profiles.get((model, version))
        # A feature event need not name a version: use the model's profile if it has just one.
        candidates = [profile for (name, _), profile in self.profiles.items() if name == model]
        return candidates[0] if len(candidates) == 1 else None

    def _positive_label(self, key: Any) -> str:
        profile = self.profiles.get(key[:2])
        return (profile.positive_label if profile else None) or "1"

    def _slices_for(self, key: Any) -> list[list[str]]:
        model, version = key[0], key[1]
        if model in self.slices:
            return [list(names) for names in self.slices[model]]
        profile = self.profiles.get((model, version))
        return [[name] for name in sorted({s.segment for s in profile.slices})] if profile else []

    def process(self, raws: Sequence[bytes]) -> PipelineOutput:
        """Decode a batch, add it to its windows, and emit what the windows that closed say."""
        return self.report(self.stage.process(raws))

    def flush(self) -> PipelineOutput:
        """Close every open window (the end of a replayed file)."""
        return self.report(self.stage.flush())

    def report(self, stage: StageOutput) -> PipelineOutput:
        """Judge a stage's complete partials (one stage's, or merged ones of many)."""
        out = PipelineOutput(
            dead_letters=stage.dead_letters,
            late_events=stage.late_events,
            labels_received=stage.labels_received,
            labels_matched=stage.labels_matched,
            screened=dict(stage.screened),
        )
        self.report_partials(stage.partials, out)
        return out

    def report_partials(self, partials: Sequence[Partial], out: PipelineOutput) -> None:
        self.reporter.report_many(partials, out.rows, out.findings, out.examples, out.view)

    def open_windows(self) -> dict[tuple[Any, int], WindowAggregates]:
        """The windows still open, by (key, start): the partials a runtime merges across partitions."""
        return self.stage.open_windows()
