"""False alerts and detection power of the built-in alert rules, on simulated traffic.

No broker and no ClickHouse: for each traffic *shape* (features, requests a
minute), one model (version ``1``, variants ``production`` and a ``canary``
mirroring 5% of the requests), with segments ``gender`` (2 values, 50/50) and
``region`` (4, skewed), an SLO (99.9% within 300 ms), a score from a logistic
model of the features (AUC ~0.8, ~30% positives, labels drawn calibrated) and a
mix of features (normal, lognormal and Pareto amounts, Poisson counts, Zipf-like
categoricals with rare values, 1% missing values in some), and an embedding of
16 numbers (``emb``: a mixture of three anisotropic clusters). The reference
profile is 20,000 rows of the same generator (another seed), so its sampling
error is part of the null, as in real life.

The settings (models, segments, SLO, baseline, windows, alerting) build the
pipeline's reporter through ``pipeline_from_settings`` and the alerting as
``streamwatch replay`` does, so that what the settings wire applies here too.
Each one-minute window's events are drawn as numpy columns and poured straight
into a ``WindowAggregates`` through its parts (:func:`fill_window`;
``tests/test_bench.py`` holds it equal to ``WindowAggregates.update`` on decoded
events), which is what makes a simulated week at 2,000 requests a minute
affordable. Labels come 1 to 60 minutes late (uniform); each window's
performance partial is re-reported every 5 minutes as its labels arrive, a
growing aggregate, as the pipeline re-reports it. Partials go to the reporter
in event-time order and the rules judge each simulated minute's rows and
findings.

Two measures:

- **false alerts**: stationary traffic (nothing changes), transitions to
  ``firing`` per rule, scaled to a model-week, per shape;
- **detection delay**: 2 hours of stationary traffic, then an incident; the
  windows from onset until the rule that should catch it fires on the
  incident's series (``missed`` if not within 60): a normal feature's mean
  shifted (``feature-drift``), slice ``gender=F``'s FPR raised
  (``slice-fpr-gap``), the canary's latency multiplied (``slo-burn-page``, and
  ``divergence-latency``), a share of the embedding's requests moved to one
  of its clusters (``embedding-drift``).

    .venv/bin/python bench/false_alerts.py                 # 7 days per shape: about half an hour on 2 cores
    .venv/bin/python bench/false_alerts.py --quick         # 1 day, the two smallest shapes: a few minutes
    .venv/bin/python bench/false_alerts.py --days 2 --json out.json

Seeds are fixed: a run is deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Any

import numpy as np

from streamwatch.alerts.engine import Alerting
from streamwatch.config.settings import Settings
from streamwatch.core.categories import CategoryCounts
from streamwatch.core.divergence import Divergence, Twin
from streamwatch.core.estimation import score_cells
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.join import Prediction
from streamwatch.core.performance import _EPS, _LOG_LOSS_UNIT, PerformanceAggregates
from streamwatch.core.records import Finding, MetricRow
from streamwatch.core.slo import SLO
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.pipeline.stage import Partial
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

MODEL, VERSION = "sim", "1"
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000  # a midnight
MINUTE_MS = 60_000
WEEK_MINUTES = 7 * 24 * 60

#: (features, production requests a minute) of the stationary runs.
SHAPES: tuple[tuple[int, int], ...] = ((20, 10), (30, 100), (50, 570), (40, 2000))
CANARY_SHARE = 0.05
REFERENCE_ROWS = 20_000
#: The embedding every request carries: its name and length (small, so that a simulated week stays affordable;
#: its thresholds depend on its spectrum, not on its length).
EMBEDDING, EMBEDDING_DIMS = "emb", 16
SEGMENTS: dict[str, tuple[list[str], list[float]]] = {
    "gender": (["F", "M"], [0.5, 0.5]),
    "region": (["north", "south", "east", "west"], [0.5, 0.3, 0.15, 0.05]),
}
#: The SLO, and a service that keeps it with room to spare (half its error budget): errors 0.03%,
#: latency lognormal (median 100 ms, a third of the target: tripled, half the requests breach it) with
#: 0.02% of requests over 300 ms.
SLO_TARGET, SLO_LATENCY_MS = 0.999, 300.0
ERROR_RATE = 0.0003
LATENCY_MEDIAN_MS = 100.0
LATENCY_SIGMA = math.log(SLO_LATENCY_MS / LATENCY_MEDIAN_MS) / 3.54  # P(z > 3.54) = 0.0002
#: Labels arrive 1 to 60 minutes after their prediction; a window's performance is re-reported every 5.
LABEL_DELAY_MINUTES = (1.0, 60.0)
REPORT_EVERY = 5
#: Feature kinds, cycled: a shape of n features takes the first n of the cycle.
KINDS = ("normal", "lognormal", "poisson2", "category", "normal", "pareto", "poisson8", "category", "normal", "normal")
CATEGORIES = [f"c{i:02d}" for i in range(12)]
_ZIPF = 1 / np.arange(1, 13) ** 2.0
CATEGORY_SHARES = _ZIPF / _ZIPF.sum()  # the last three under 0.7%, the last under 0.5%
MISSING_SHARE = 0.01


# -- traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    missing: bool  # 1% of its values are missing


class Generator:
    """Requests of one stationary model: features, segments, score, prediction and label, as columns.

    The model (which features drive the score, and how much) is fixed by ``n_features`` alone,
    so the reference and the live traffic share it; ``draw`` takes the randomness.
    """

    def __init__(self, n_features: int) -> None:
        self.features = [
            Feature(f"f{i:02d}_{KINDS[i % len(KINDS)]}", KINDS[i % len(KINDS)], i % 3 == 1) for i in range(n_features)
        ]
        model = np.random.default_rng(12345)
        # The score depends on a few features: every normal one but the first (which drift incidents
        # shift, so that they move the feature alone), the first lognormal and the first categorical.
        normals = [f.name for f in self.features if f.kind == "normal"]
        self.drifting = normals[0]
        self.drivers = normals[1:4]
        self.amount = next(f.name for f in self.features if f.kind == "lognormal")
        self.category = next((f.name for f in self.features if f.kind == "category"), None)
        self.category_effect = model.normal(0.0, 0.5, len(CATEGORIES))
        self.weights = model.uniform(0.5, 1.0, len(self.drivers))
        # Scaled so that the logit's spread gives an AUC near 0.8 and its offset ~30% positives.
        self.scale, self.offset = 1.4, -0.75
        # The embedding's clusters: centres, and spreads falling over the dimensions (anisotropic).
        self.centres = model.normal(0.0, 1.0, (3, EMBEDDING_DIMS))
        self.spreads = np.geomspace(1.0, 0.1, EMBEDDING_DIMS) * model.uniform(0.5, 1.5, (3, 1))

    def draw(
        self,
        rng: np.random.Generator,
        n: int,
        shift: Mapping[str, float] | None = None,
        scale: float = 1.0,
        cluster_shift: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """``n`` requests; ``shift`` adds to a numeric feature's values, ``scale`` multiplies the features that
        drive the score (incidents: the second moves scores towards 0.5, where the model errs more);
        ``cluster_shift`` moves that share of the embedding's requests to its smallest cluster."""
        columns: dict[str, np.ndarray] = {}
        for feature in self.features:
            kind = feature.kind
            if kind == "normal":
                values: np.ndarray = rng.normal(0.0, 1.0, n)
            elif kind == "lognormal":
                values = rng.lognormal(3.0, 1.5, n)
            elif kind == "pareto":
                values = (rng.pareto(2.5, n) + 1.0) * 10.0
            elif kind == "poisson2":
                values = rng.poisson(2.0, n).astype(float)
            elif kind == "poisson8":
                values = rng.poisson(8.0, n).astype(float)
            else:
                codes = rng.choice(len(CATEGORIES), n, p=CATEGORY_SHARES)
                values = np.array(CATEGORIES, dtype=object)[codes]
            if shift and feature.name in shift:
                values = values + shift[feature.name]
            if scale != 1.0 and feature.name in self.drivers:
                values = values * scale
            if feature.missing:
                gone = rng.random(n) < MISSING_SHARE
                if values.dtype == object:
                    values[gone] = None
                else:
                    values[gone] = np.nan
            columns[feature.name] = values
        for name, (levels, shares) in SEGMENTS.items():
            columns[name] = np.array(levels, dtype=object)[rng.choice(len(levels), n, p=shares)]
        logit = np.zeros(n)
        for name, weight in zip(self.drivers, self.weights, strict=True):
            logit += weight * np.nan_to_num(columns[name])
        logit += 0.3 * (np.nan_to_num(np.log(columns[self.amount]), nan=3.0) - 3.0)
        if self.category is not None:
            index = {c: i for i, c in enumerate(CATEGORIES)}
            effects = np.array([0.0 if v is None else self.category_effect[index[v]] for v in columns[self.category]])
            logit += effects
        spread = math.sqrt(float((self.weights**2).sum()) + 0.09 * 2.25 + 0.25)
        score = 1 / (1 + np.exp(-(self.offset + self.scale * logit / spread)))
        columns["score"] = np.round(score, 4)
        columns["prediction"] = (columns["score"] >= 0.5).astype(np.int64)
        columns["label"] = (rng.random(n) < columns["score"]).astype(np.int64)
        columns["latency_ms"] = rng.lognormal(math.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA, n)
        columns["ok"] = rng.random(n) >= ERROR_RATE
        columns["offset_ms"] = rng.integers(0, MINUTE_MS, n)  # event time within the window
        weights = (1 - cluster_shift) * np.array([0.5, 0.3, 0.2]) + cluster_shift * np.array([0.0, 0.0, 1.0])
        cluster = rng.choice(3, n, p=weights)
        columns[EMBEDDING] = self.centres[cluster] + rng.normal(0.0, 1.0, (n, EMBEDDING_DIMS)) * self.spreads[cluster]
        return columns


def take(columns: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


def reference(generator: Generator, seed: int) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    drawn = generator.draw(rng, REFERENCE_ROWS)
    columns = {f.name: drawn[f.name] for f in generator.features}
    columns |= {name: drawn[name] for name in (*SEGMENTS, "score", "prediction", "label")}
    lineage = Lineage(
        model=MODEL,
        model_version=VERSION,
        data_uri="simulated",
        rows=REFERENCE_ROWS,
        content_sha256="0" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="bench",
    )
    return build_profile(
        columns,
        lineage=lineage,
        label_column="label",
        score_column="score",
        prediction_column="prediction",
        segments=list(SEGMENTS),
        embeddings={EMBEDDING: drawn[EMBEDDING]},
    )


def baseline(columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """AUC and accuracy on the reference rows: the model's validation figures."""
    score, label = columns["score"], columns["label"].astype(bool)
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    ranks[order] = np.arange(1, score.size + 1)
    # Average ranks of ties, for the Mann-Whitney AUC.
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    positives = int(label.sum())
    negatives = label.size - positives
    auc = (ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    accuracy = float((columns["prediction"].astype(bool) == label).mean())
    return {"roc_auc": round(float(auc), 4), "accuracy": round(accuracy, 4)}


# -- the shortcut: windows and performance filled from columns --------------------------------------


def fill_window(
    profile: ReferenceProfile, slo: SLO, columns: Mapping[str, np.ndarray], slices: Sequence[Sequence[str]] = ()
) -> WindowAggregates:
    """The window aggregates of a batch of predictions given as columns, as ``WindowAggregates.update`` makes them.

    ``columns`` holds each feature (floats with NaN for missing, or objects with None), ``score`` (NaN
    for none), ``latency_ms`` and ``ok``. Numeric features go through the aggregates' own
    ``_numeric_values`` (histogram and out-of-range count), categorical ones through
    ``CategoryCounts.update``; the request parts through their sketches and counters.
    """
    aggregates = WindowAggregates(profile, slo, slices if profile.calibration is not None else ())
    for name, aggregate in aggregates.features.items():
        values = columns[name]
        if isinstance(aggregate, NumericHistogram):
            aggregates._numeric_values(name, aggregate, np.asarray(values, dtype=float))
        else:
            assert isinstance(aggregate, CategoryCounts)
            aggregate.update(values.tolist())
    ok = np.asarray(columns["ok"], dtype=bool)
    latency = np.asarray(columns["latency_ms"], dtype=float)
    aggregates.requests += ok.size
    aggregates.errors += int(ok.size - np.count_nonzero(ok))
    aggregates.latency.update(latency)
    aggregates.sli.update(ok, latency)
    if aggregates.score is not None:
        aggregates.score.update(np.asarray(columns["score"], dtype=float))
    if aggregates.multivariate is not None:
        segments = {name: np.asarray(columns[name], dtype=object) for name in SEGMENTS}
        aggregates._reconstructed({name: list(columns[name]) for name in aggregates.features}, ok.size, segments)
    if EMBEDDING in aggregates.embeddings:  # every request carries it, an errored one too
        aggregates._embedded_matrix(EMBEDDING, np.asarray(columns[EMBEDDING], dtype=float))
    if aggregates.prediction is not None:  # an errored request predicted nothing
        aggregates._predicted(np.where(ok, columns["prediction"], None).tolist())
    if aggregates.estimate is not None and aggregates.score is not None:
        scores = np.asarray(columns["score"], dtype=float)
        scored = ok & ~np.isnan(scores)
        aggregates.estimate.update(
            score_cells(aggregates.score.edges, scores[scored]),
            np.asarray(columns["prediction"])[scored].astype(bool),
            {name: np.asarray(columns[name], dtype=object)[scored] for name in SEGMENTS},
        )
    return aggregates


def matches(columns: Mapping[str, np.ndarray], variant: str) -> list[tuple[Prediction, int]]:
    """(prediction record, label) pairs as the label join hands them to ``PerformanceAggregates.update``."""
    segments = list(zip(*(columns[name].tolist() for name in SEGMENTS), strict=True))
    names = tuple(SEGMENTS)  # already in sorted order, as the stage sorts them
    return [
        (Prediction(0, VERSION, variant, prediction, score, tuple(zip(names, values, strict=True))), label)
        for prediction, score, values, label in zip(
            columns["prediction"].tolist(),
            columns["score"].tolist(),
            segments,
            columns["label"].tolist(),
            strict=True,
        )
    ]


def fill_performance(aggregates: PerformanceAggregates, columns: Mapping[str, np.ndarray]) -> None:
    """Add labelled predictions given as columns (``prediction``, ``score``, ``label``, segments), as
    ``PerformanceAggregates.update`` adds their :func:`matches`: confusion counts per slice, score
    histogram per class and the fixed-point log loss (its two counters, computed as ``update`` does)."""
    y_true = np.asarray(columns["label"]).astype(bool)
    if not y_true.size:
        return
    y_pred = np.asarray(columns["prediction"]).astype(bool)
    aggregates.confusion.update(y_true, y_pred, {name: columns[name] for name in SEGMENTS})
    scores = np.asarray(columns["score"], dtype=float)
    aggregates.scores.update(scores, y_true)
    clipped = np.clip(scores, _EPS, 1 - _EPS)
    clipped = np.where(y_true, clipped, 1 - clipped)
    aggregates._log_loss_units += int(np.rint(-np.log(clipped) / _LOG_LOSS_UNIT).sum())
    aggregates._scored += y_true.size
    if aggregates.estimate is not None and aggregates.estimate_correct is not None:
        assert aggregates.score_edges is not None
        cells = score_cells(aggregates.score_edges, scores)
        right = y_true == y_pred
        segments = {name: np.asarray(columns[name], dtype=object) for name in SEGMENTS}
        aggregates.estimate.update(cells, y_pred, segments)
        aggregates.estimate_correct.update(cells[right], y_pred[right], {n: v[right] for n, v in segments.items()})


# -- one run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """What goes wrong at minute ``onset``, and the rule (and series) that should say so."""

    name: str
    rule: str
    onset: int
    variant: str = "production"
    shift_sigma: float = 0.0  # the drifting feature's mean, in reference standard deviations
    fpr_points: float = 0.0  # share of gender=F's true negatives predicted positive
    latency_factor: float = 1.0  # the canary's latencies multiplied
    also: tuple[str, ...] = ()  # other rules whose delay is reported
    label_delay: tuple[float, float] = LABEL_DELAY_MINUTES  # minutes, uniform
    driver_scale: float = 1.0  # the score's drivers multiplied: a covariate shift that lowers real performance
    concept_points: float = 0.0  # share of gender=F's labels drawn from 1 - score: P(y|x) changed for them
    embedding_shift: float = 0.0  # share of the embedding's requests moved to its smallest cluster


@dataclass
class RunResult:
    features: int
    rpm: int
    minutes: int
    firing: Counter[str] = field(default_factory=Counter)  # per rule
    findings: Counter[str] = field(default_factory=Counter)  # per kind
    first_firing: dict[str, int | None] = field(default_factory=dict)  # incident: rule -> minutes after onset
    seconds: float = 0.0


def settings_for(features: int, base: Mapping[str, float]) -> Settings:
    return Settings(
        models=[
            {
                "name": MODEL,
                "segments": list(SEGMENTS),
                "slo": {"target": SLO_TARGET, "latency_ms": SLO_LATENCY_MS},
                "baseline": dict(base),
            }
        ],
        # No rolling view: no rule judges it (rules read tumbling windows only), and it would double the cost.
        windows={"size_ms": MINUTE_MS, "rolling_windows": 0},
        alerting={},
    )


@dataclass
class _Slot:
    """A window's performance partial, filled as its labels arrive."""

    start: int
    variant: str
    aggregates: PerformanceAggregates
    columns: dict[str, np.ndarray]
    due: np.ndarray  # per labelled prediction, the report (1..12) that first includes it


def run(
    features: int,
    rpm: int,
    minutes: int,
    seed: int,
    incident: Incident | None = None,
    canary_rpm: float | None = None,
) -> RunResult:
    """Simulate ``minutes`` one-minute windows; count firing transitions and findings (and detections)."""
    started = time.perf_counter()
    generator = Generator(features)
    profile = reference(generator, seed=1_000 + features)
    base = baseline(generator.draw(np.random.default_rng(2_000 + features), REFERENCE_ROWS))
    profiles = {(MODEL, VERSION): profile}
    settings = settings_for(features, base)
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting(settings.rules, {}, settings.alerting, profiles, settings.models, pipeline.window_ms)
    reporter, window_ms = pipeline.reporter, pipeline.window_ms
    slo = pipeline.slos[MODEL]
    canary_share = CANARY_SHARE if canary_rpm is None else canary_rpm / rpm
    drifting = profile.features[generator.drifting]
    assert drifting.kind == "numeric"
    sigma = drifting.std or 1.0
    rng = np.random.default_rng(seed)
    result = RunResult(features, rpm, minutes)
    if incident is not None:
        result.first_firing = {rule: None for rule in (incident.rule, *incident.also)}
    slots: list[_Slot] = []
    for minute in range(minutes):
        start = START_MS + minute * window_ms
        active = incident is not None and minute >= incident.onset
        shift = {generator.drifting: incident.shift_sigma * sigma} if active and incident.shift_sigma else None
        scale = incident.driver_scale if active and incident is not None else 1.0
        moved = incident.embedding_shift if active and incident is not None else 0.0
        production = generator.draw(rng, int(rng.poisson(rpm)), shift, scale, moved)
        if active and incident is not None and incident.concept_points:
            turned = (production["gender"] == "F") & (rng.random(len(production["label"])) < incident.concept_points)
            flipped = (rng.random(len(production["label"])) < 1 - production["score"]).astype(np.int64)
            production["label"] = np.where(turned, flipped, production["label"])
        if active and incident.fpr_points:
            flip = (
                (production["gender"] == "F")
                & (production["label"] == 0)
                & (production["prediction"] == 0)
                & (rng.random(len(production["label"])) < incident.fpr_points)
            )
            production["prediction"] = np.where(flip, 1, production["prediction"])
        mirrored = np.flatnonzero(rng.random(len(production["label"])) < canary_share)
        canary = take(production, mirrored)
        canary["latency_ms"] = rng.lognormal(math.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA, mirrored.size)
        canary["ok"] = rng.random(mirrored.size) >= ERROR_RATE
        if active and incident.latency_factor != 1.0:
            canary["latency_ms"] = canary["latency_ms"] * incident.latency_factor
        partials: list[Partial] = []
        if mirrored.size:
            divergence = Divergence()
            divergence.update(
                [
                    (
                        Twin("production", VERSION, p, s, lp, start + o),
                        Twin("canary", VERSION, p, s, lc, start + o + 1),
                    )
                    for p, s, lp, lc, o in zip(
                        production["prediction"][mirrored].tolist(),
                        production["score"][mirrored].tolist(),
                        production["latency_ms"][mirrored].tolist(),
                        canary["latency_ms"].tolist(),
                        production["offset_ms"][mirrored].tolist(),
                        strict=True,
                    )
                ]
            )
            partials.append(Partial("divergence", (MODEL, VERSION, "canary", VERSION), start, divergence))
        windows = []
        for variant, columns in (("production", production), ("canary", canary)):
            if not len(columns["ok"]):
                continue  # no event, no window
            # An errored request has no score or prediction, so no label joins it.
            scored = dict(columns, score=np.where(columns["ok"], columns["score"], np.nan))
            window = fill_window(profile, slo, scored, pipeline._slices_for((MODEL, VERSION, variant)))
            windows.append(Partial("window", (MODEL, VERSION, variant), start, window))
            labelled = take(columns, np.flatnonzero(columns["ok"]))
            delay = (
                rng.uniform(*(incident.label_delay if incident else LABEL_DELAY_MINUTES), labelled["ok"].size)
                * MINUTE_MS
            )
            arrival = labelled["offset_ms"] + delay  # from the window's start
            # Report k (1..12) is made when window start + 5k minutes closes: it has the labels come by then.
            due = np.floor((arrival - window_ms) / (REPORT_EVERY * MINUTE_MS)).astype(np.int64) + 1
            slots.append(_Slot(start, variant, pipeline.new_performance((MODEL, VERSION, variant)), labelled, due))
        # In the order the stage hands them out: divergence, performance (by window start), windows.
        kept = []
        for slot in sorted(slots, key=lambda s: (s.start, s.variant)):
            age = (start - slot.start) // window_ms
            if age > 0 and age % REPORT_EVERY == 0:
                report = age // REPORT_EVERY
                arrived = np.flatnonzero(slot.due == report)
                if arrived.size:
                    fill_performance(slot.aggregates, take(slot.columns, arrived))
                    partials.append(Partial("performance", (MODEL, VERSION, slot.variant), slot.start, slot.aggregates))
                if report >= int(slot.due.max(initial=0)):
                    continue  # every label is in
            kept.append(slot)
        slots = kept
        partials += windows
        rows: list[MetricRow] = []
        findings: list[Finding] = []
        examples: dict[tuple[str, str, str, int], list[str]] = {}
        view: list[MetricRow] = []  # the performance view, which the rules judge and nothing stores
        for partial in partials:
            reporter.report(partial, rows, findings, examples, view)
        result.findings.update(f.kind for f in findings)
        out = alerting.report(rows + view, findings, examples, None)
        for alert in out.alerts:
            if alert.status != "firing":
                continue
            result.firing[alert.rule] += 1
            if (
                incident is not None
                and active
                and alert.rule in result.first_firing
                and result.first_firing[alert.rule] is None
                and _on_series(alert, incident, generator)
            ):
                result.first_firing[alert.rule] = minute - incident.onset
    result.seconds = time.perf_counter() - started
    return result


def _on_series(alert: Any, incident: Incident, generator: Generator) -> bool:
    """Whether a firing alert is about the incident's own series (not a false alert elsewhere)."""
    if alert.rule == "feature-drift" and incident.embedding_shift:  # the embedding's projections
        return alert.variant == "production" and (alert.feature or "").startswith(f"{EMBEDDING}#pc")
    if alert.rule == "feature-drift":
        return alert.variant == "production" and alert.feature == generator.drifting
    if alert.rule == "embedding-drift":
        return alert.variant == "production" and alert.feature == EMBEDDING
    if alert.rule == "slice-fpr-gap":
        return alert.variant == "production" and dict(alert.segment or {}) == {"gender": "F"}
    return alert.variant == incident.variant


# -- the runs -----------------------------------------------------------------------------------------


def incidents(before: int = 120) -> list[tuple[str, int, int, Incident, float | None]]:
    """(name, features, requests a minute, incident, canary requests a minute) of the power runs."""
    out: list[tuple[str, int, int, Incident, float | None]] = []
    for rpm in (100, 570, 2000):
        for sigma in (0.25, 0.5, 1.0):
            name = f"mean +{sigma:g} sd @ {rpm} rpm"
            out.append((name, 20, rpm, Incident(name, "feature-drift", before, shift_sigma=sigma), None))
    # ~60 labelled negatives per gender slice a minute: rpm * 0.5 (F) * ~0.7 (negatives) = 60.
    fpr_rpm = 172
    # Labels 5 to 30 minutes late (the trial that filed the issue), and 1 to 60 (the stationary runs').
    for delay in ((5.0, 30.0), LABEL_DELAY_MINUTES):
        for points in (0.05, 0.10, 0.20, 0.30):
            name = f"FPR(gender=F) +{points * 100:.0f} pts @ {fpr_rpm} rpm, labels {delay[0]:g}-{delay[1]:g} min late"
            incident = Incident(name, "slice-fpr-gap", before, fpr_points=points, label_delay=delay)
            out.append((name, 20, fpr_rpm, incident, None))
    # Covariate shift: the score's drivers shrink, so scores crowd 0.5 and the real ROC AUC falls (from ~0.8
    # to ~0.7 and ~0.6); estimated before any label arrives.
    for rpm in (100, 570):
        for factor in (0.5, 0.25):
            name = f"drivers x{factor:g} @ {rpm} rpm"
            incident = Incident(name, "estimated-performance-drop", before, driver_scale=factor, also=("auc-drop",))
            out.append((name, 20, rpm, incident, None))
    # Concept drift for one slice: a share of gender=F's labels follow 1 - score; the estimate cannot see it,
    # the labels part from it as they arrive.
    for points in (0.2, 0.5):
        name = f"concept(gender=F) {points * 100:.0f}% @ 570 rpm"
        out.append((name, 20, 570, Incident(name, "estimate-diverged", before, concept_points=points), None))
    # An embedding's cluster of inputs grows: a share of requests moves to its smallest cluster, so its mean
    # vector moves while every feature stays put; its projections (feature-drift on emb#pc1...) move too.
    for rpm in (100, 570):
        for moved in (0.15, 0.3, 0.6):
            name = f"embedding: {moved * 100:.0f}% to one cluster @ {rpm} rpm"
            incident = Incident(name, "embedding-drift", before, embedding_shift=moved, also=("feature-drift",))
            out.append((name, 20, rpm, incident, None))
    for canary in (10, 100):
        for factor in (1.5, 3.0, 6.0):
            name = f"canary latency x{factor:g} @ {canary} canary rpm"
            incident = Incident(
                name, "slo-burn-page", before, "canary", latency_factor=factor, also=("divergence-latency",)
            )
            out.append((name, 20, int(canary / CANARY_SHARE), incident, float(canary)))
    return out


def _stationary(task: tuple[int, int, int, int]) -> RunResult:
    features, rpm, minutes, seed = task
    return run(features, rpm, minutes, seed)


def _power(task: tuple[str, int, int, Incident, float | None, int, int]) -> tuple[str, RunResult]:
    name, features, rpm, incident, canary_rpm, minutes, seed = task
    return name, run(features, rpm, minutes, seed, incident, canary_rpm)


def simulate(
    shapes: Sequence[tuple[int, int]],
    minutes: int,
    power: Sequence[tuple[str, int, int, Incident, float | None]],
    after: int = 60,
    processes: int | None = None,
) -> dict[str, Any]:
    """Every stationary shape and every incident, over a pool of processes; the JSON-ready results."""
    stationary = [(f, r, minutes, 7 + i) for i, (f, r) in enumerate(shapes)]
    runs = [(*p, p[3].onset + after, 101 + i) for i, p in enumerate(power)]
    processes = processes or min(os.cpu_count() or 1, max(1, len(stationary) + len(runs)))
    started = time.perf_counter()
    if processes > 1:
        with Pool(processes) as pool:
            # The longest first, so that the pool does not end on one long run.
            slow = pool.map_async(_stationary, sorted(stationary, key=lambda t: -t[0] * t[1] * t[2]), chunksize=1)
            fast = pool.map_async(_power, runs, chunksize=1)
            stationary_results, power_results = slow.get(), fast.get()
    else:
        stationary_results = [_stationary(t) for t in stationary]
        power_results = [_power(t) for t in runs]
    by_shape = {(r.features, r.rpm): r for r in stationary_results}
    out: dict[str, Any] = {"minutes": minutes, "shapes": [], "incidents": [], "seconds": 0.0}
    for features, rpm in shapes:
        r = by_shape[(features, rpm)]
        scale = WEEK_MINUTES / r.minutes
        out["shapes"].append(
            {
                "features": features,
                "requests_per_minute": rpm,
                "minutes": r.minutes,
                "seconds": round(r.seconds, 1),
                "firing_per_week": {rule: round(n * scale, 2) for rule, n in sorted(r.firing.items())},
                "firing_per_week_total": round(sum(r.firing.values()) * scale, 2),
                "findings_per_week": {kind: round(n * scale, 1) for kind, n in sorted(r.findings.items())},
            }
        )
    for (name, features, rpm, incident, canary_rpm), (_, r) in zip(power, power_results, strict=True):
        out["incidents"].append(
            {
                "incident": name,
                "features": features,
                "requests_per_minute": rpm,
                "canary_requests_per_minute": canary_rpm,
                "onset_minute": incident.onset,
                "rule": incident.rule,
                "delay_windows": {rule: delay for rule, delay in r.first_firing.items()},
                "seconds": round(r.seconds, 1),
            }
        )
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def rule_names() -> list[str]:
    from streamwatch.alerts.defaults import DEFAULT_RULES

    return [rule.name for rule in DEFAULT_RULES]


def markdown(results: Mapping[str, Any]) -> str:
    shapes = results["shapes"]
    lines = []
    days = results["minutes"] / 1440
    lines.append(
        f"False alerts: transitions to firing per model-week (simulated {days:g} day{'s' if days != 1 else ''} "
        "of stationary traffic per shape, scaled to a week)\n"
    )
    header = [f"{s['features']} features, {s['requests_per_minute']} rpm" for s in shapes]
    lines.append("| rule | " + " | ".join(header) + " |")
    lines.append("| --- |" + " ---: |" * len(shapes))
    names = rule_names()
    names += sorted({rule for s in shapes for rule in s["firing_per_week"]} - set(names))
    for rule in names:
        cells = [f"{s['firing_per_week'].get(rule, 0.0):g}" for s in shapes]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{s['firing_per_week_total']:g}**" for s in shapes) + " |")
    kinds = sorted({kind for s in shapes for kind in s["findings_per_week"]})
    for kind in kinds:
        cells = [f"{s['findings_per_week'].get(kind, 0.0):g}" for s in shapes]
        lines.append(f"| _findings: {kind}_ | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Detection delay, in windows from onset to the rule firing on the incident's series (missed: not in 60)\n"
    )
    lines.append("| incident | rule | delay (windows) |")
    lines.append("| --- | --- | ---: |")
    for incident in results["incidents"]:
        for rule, delay in incident["delay_windows"].items():
            lines.append(f"| {incident['incident']} | {rule} | {'missed' if delay is None else delay} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="stationary days simulated per shape")
    parser.add_argument("--quick", action="store_true", help="1 day, the two smallest shapes")
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    parser.add_argument("--processes", type=int, default=None, help="default: one per core")
    args = parser.parse_args(argv)
    shapes = SHAPES
    if args.quick:
        args.days, shapes = 1.0, SHAPES[:2]
    results = simulate(shapes, int(args.days * 1440), incidents(), processes=args.processes)
    print(markdown(results))
    print(f"\n{results['seconds']:.0f} s on {os.cpu_count()} cores")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
            file.write("\n")


if __name__ == "__main__":
    sys.exit(main())
