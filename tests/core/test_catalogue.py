"""The metric catalogue against what the pipeline really emits and what the default rules really read.

The emitted names are collected by running the real pipeline (no broker) over four streams that between them
reach every kind of row: the demo scenario (a binary classifier with segments, a calibrated score, an embedding,
multivariate drift, a canary on other requests, drift, fairness and latency incidents; plus a few events with a
feature the reference lacks and an embedding of the wrong length), the canary-twin traffic of the alert scenarios
(a canary answering the same requests: the divergence rows), a multiclass model and a regression model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import numpy as np
import orjson
import pytest

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.core.catalogue import FAMILIES, METRICS, MetricDoc, lookup
from streamwatch.core.drift_report import DECIDING
from streamwatch.core.records import Finding, MetricRow
from streamwatch.core.slo import BURN_RATE_ALERTS
from streamwatch.core.slo_history import _label as burn_label
from streamwatch.demo.scenario import MODEL, DemoScenario
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import build_profile
from tests.pipeline.test_pipeline import START, profile
from tests.pipeline.test_tasks import lineage, multiclass_profile, multiclass_stream
from tests.scenarios import traffic

#: Catalogued names no run here emits, each with the reason. Keep it short: an entry here is documentation no
#: test holds to the code's names.
NOT_EMITTED_IN_TESTS: dict[str, str] = {}

#: The metrics of the quality findings (``pipeline.window_report.quality_rows``: its checks list them inline), which
#: the ``data-quality`` rule judges.
QUALITY_FINDING_METRICS = frozenset({"missing_rate", "type_mismatch_rate", "out_of_range_rate", "unseen_rate"})
#: The metric of the change findings the ``change-detected`` rule judges: the reporter's detector watches the
#: error rate only (``Reporter._window``).
CHANGE_FINDING_METRICS = frozenset({"error_rate"})


@dataclass
class Emitted:
    rows: list[MetricRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, pipeline: Pipeline, raws: list[bytes], batch: int = 2_000) -> None:
        for start in range(0, len(raws), batch):
            out = pipeline.process(raws[start : start + batch])
            self.rows += out.rows + out.view
            self.findings += out.findings
        out = pipeline.flush()
        self.rows += out.rows + out.view
        self.findings += out.findings


def _demo_raws(scenario: DemoScenario) -> list[bytes]:
    """The demo's events, the first few predictions also sending a feature the reference lacks and an embedding
    of the wrong length (quality rows the scenario does not produce)."""
    raws = []
    odd = 0
    for event in scenario.events():
        if event["type"] == "prediction" and odd < 3:
            odd += 1
            event = {**event, "features": {**event["features"], "referrer": "partner"}}
            event["embeddings"] = {name: vector[:-1] for name, vector in event.get("embeddings", {}).items()}
        raws.append(orjson.dumps(event))
    return raws


def _regression_raws(minutes: int = 2, per_minute: int = 200) -> list[bytes]:
    rng = np.random.default_rng(5)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for i in range(minutes * per_minute):
        at = START + i * (60_000 // per_minute)
        predicted = float(rng.normal(10, 2))
        raws.append(
            encoder.prediction("price", "1", f"p{i}", 5.0, {"x": float(rng.normal())}, predicted, None, timestamp=at)
        )
        raws.append(encoder.label(model="price", request_id=f"p{i}", label=float(rng.normal(10, 2)), timestamp=at + 1))
    return raws


@functools.cache
def emitted() -> Emitted:
    """Every row and finding of the four runs (computed once for the module's tests)."""
    out = Emitted()
    # The demo, as `streamwatch demo` configures its model (windows of a minute, a 10-window rolling view, the
    # default performance view of 30 minutes), shortened.
    scenario = DemoScenario(minutes=10, per_minute=200)
    settings = load_settings(
        models=[{"name": MODEL, "segments": ["gender", "region"], "slo": {"latency_ms": 300, "target": 0.99}}],
        windows={"size_ms": 60_000, "allowed_lateness_ms": 5_000, "rolling_windows": 10},
    )
    out.add(pipeline_from_settings(settings, scenario.reference_profiles(rows=5_000)), _demo_raws(scenario))
    # A canary answering production's requests (twins): agreement, score differences, the latency ratio.
    reference = profile()
    twins = Pipeline({("credit", "3"): reference, ("credit", "4"): reference}, rolling_windows=0)
    out.add(twins, traffic(minutes=2, per_minute=250))
    # A multiclass model, with a gender slice.
    classes = Pipeline({("zoo", "1"): multiclass_profile()}, slices={"zoo": [["gender"]]}, rolling_windows=0)
    out.add(classes, multiclass_stream(minutes=2)[0])
    # A regression, with labels.
    rng = np.random.default_rng(5)
    regression = build_profile(
        {"x": rng.normal(0, 1, 3000), "y": rng.normal(10, 2, 3000), "yhat": rng.normal(10, 2, 3000)},
        lineage=lineage("price"),
        label_column="y",
        prediction_column="yhat",
    )
    out.add(
        Pipeline({("price", "1"): regression}, tasks={"price": "regression"}, rolling_windows=0), _regression_raws()
    )
    return out


def catalogued() -> set[str]:
    return {doc.name for doc in METRICS}


def emitted_names() -> set[str]:
    return {row.metric for row in emitted().rows}


def test_every_metric_the_pipeline_emits_is_catalogued() -> None:
    missing = emitted_names() - catalogued()
    assert missing == set(), f"metrics emitted but not in the catalogue: {sorted(missing)}"
    for name in emitted_names():
        assert lookup(name).name == name


def test_no_catalogue_entry_is_dead() -> None:
    assert set(NOT_EMITTED_IN_TESTS) <= catalogued(), "NOT_EMITTED_IN_TESTS names metrics the catalogue lacks"
    assert all(reason.strip() for reason in NOT_EMITTED_IN_TESTS.values())
    dead = catalogued() - emitted_names() - set(NOT_EMITTED_IN_TESTS)
    assert dead == set(), (
        f"catalogued but emitted by no run (and not explained in NOT_EMITTED_IN_TESTS): {sorted(dead)}"
    )
    stale = set(NOT_EMITTED_IN_TESTS) & emitted_names()
    assert stale == set(), f"NOT_EMITTED_IN_TESTS lists metrics the runs do emit: {sorted(stale)}"


def _slo_rule(severity: str) -> str:
    return "slo-burn-page" if severity == "page" else "slo-burn-ticket"


def expected_rules() -> dict[str, set[str]]:
    """Per metric, the default rules that read it, derived from ``alerts.defaults`` and the core's constants."""
    uses: dict[str, set[str]] = {}
    for rule in DEFAULT_RULES:
        when = rule.when
        if when.metric is not None:
            uses.setdefault(when.metric, set()).add(rule.name)
            continue
        if when.finding == "drift":
            metrics = set(DECIDING.values())
        elif when.finding == "data_quality":
            metrics = set(QUALITY_FINDING_METRICS)
        elif when.finding == "change":
            metrics = set(CHANGE_FINDING_METRICS)
        elif when.finding == "slo":
            severity = {"critical": "page", "warning": "ticket"}[str(when.finding_severity)]
            metrics = {
                f"burn_rate_{burn_label(minutes)}"
                for condition in BURN_RATE_ALERTS
                if condition.severity == severity
                for minutes in (condition.long_minutes, condition.short_minutes)
            }
        else:
            raise AssertionError(f"rule {rule.name} judges findings of kind {when.finding}: say which metrics")
        for metric in metrics:
            uses.setdefault(metric, set()).add(rule.name)
    return uses


def test_every_default_rules_metric_is_catalogued_with_its_rules() -> None:
    uses = expected_rules()
    assert set(uses) <= catalogued(), f"default rules read uncatalogued metrics: {sorted(set(uses) - catalogued())}"
    wrong = {
        doc.name: (sorted(doc.rules), sorted(uses.get(doc.name, set())))
        for doc in METRICS
        if set(doc.rules) != uses.get(doc.name, set())
    }
    assert wrong == {}, f"(catalogued rules, default rules that read the metric): {wrong}"
    named = {rule.name for rule in DEFAULT_RULES}
    assert all(set(doc.rules) <= named and len(set(doc.rules)) == len(doc.rules) for doc in METRICS)
    assert all(list(doc.rules) == sorted(doc.rules) for doc in METRICS)


def test_the_findings_the_default_rules_judge_carry_the_metrics_derived_for_them() -> None:
    """The runs' findings hold the mapping of the previous test to the code: each finding a default rule judges
    carries a metric (a burn rate's long window, by its minutes) whose entry lists that rule."""
    assert {f.kind for f in emitted().findings} >= {"drift", "data_quality", "slo"}
    for finding in emitted().findings:
        for rule in DEFAULT_RULES:
            when = rule.when
            if when.finding != finding.kind or when.finding_severity not in (None, finding.severity_hint):
                continue
            metric = finding.metric
            if finding.kind == "slo":
                minutes = finding.evidence["long_minutes"]
                assert metric == f"burn_rate_{minutes}m"  # (the finding's name differs from the row's)
                metric = f"burn_rate_{burn_label(minutes)}"
            assert rule.name in lookup(metric).rules, (rule.name, finding.kind, finding.metric)


def test_entries_are_complete_unique_and_sorted() -> None:
    names = [doc.name for doc in METRICS]
    assert len(names) == len(set(names))
    assert list(METRICS) == sorted(METRICS, key=lambda doc: (doc.family, doc.name))
    assert {doc.family for doc in METRICS} == set(FAMILIES)
    for doc in METRICS:
        for f in fields(MetricDoc):
            value = getattr(doc, f.name)
            if f.name != "rules":
                assert isinstance(value, str) and value.strip(), (doc.name, f.name)
                assert value == value.strip() and "  " not in value, (doc.name, f.name)
        assert isinstance(doc.rules, tuple)


@pytest.mark.parametrize("name", ["jensen_shannon", "burn_rate_60m", "nope"])
def test_lookup_names_the_metric_it_lacks(name: str) -> None:
    with pytest.raises(KeyError, match=name):
        lookup(name)
