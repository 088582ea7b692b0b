"""The reporter's judgements under the false-alert budget: quality beyond chance, the performance view,
fairness findings that need significance."""

from __future__ import annotations

import numpy as np

from streamwatch.alerts.engine import Alerting
from streamwatch.config.rules import AlertingConfig
from streamwatch.core.join import Prediction
from streamwatch.core.performance import PerformanceAggregates
from streamwatch.core.records import PERFORMANCE_VIEW, WindowKey
from streamwatch.core.slo import SLO
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.reporter import Reporter
from streamwatch.pipeline.stage import Partial
from streamwatch.pipeline.window_report import quality_rows
from streamwatch.profiles.model import Lineage, build_profile

MINUTE = 60_000
LINEAGE = Lineage(
    model="credit",
    model_version="3",
    data_uri="x",
    rows=10_000,
    content_sha256="0" * 64,
    created_at="2026-01-01T00:00:00Z",
    streamwatch_version="0",
)


def profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    income = rng.normal(50.0, 10.0, 10_000)
    income[:100] = np.nan  # 1% missing in the reference
    return build_profile({"income": income}, lineage=LINEAGE)


def window(missing: int, n: int = 30) -> WindowAggregates:
    aggregates = WindowAggregates(profile(), SLO(0.999))
    values = np.random.default_rng(2).normal(50.0, 10.0, n)
    values[:missing] = np.nan
    aggregates.features["income"].update(values)
    return aggregates


def test_a_quality_rate_over_its_limit_by_chance_is_no_finding() -> None:
    key = WindowKey("credit", "3", "production", 0, MINUTE)
    # 2 missing of 30 is 6.7%, over the limit of 1% + 5 points; a feature missing 1% of the time does
    # that in 4% of its windows. 10 of 30 does not happen by chance.
    rows, findings = quality_rows(key, window(missing=2), None, alpha=1e-4)
    [missing] = [r for r in rows if r.metric == "missing_rate"]
    assert missing.value > missing.threshold and findings == []
    _, findings = quality_rows(key, window(missing=10), None, alpha=1e-4)
    assert [(f.metric, f.evidence["count"]) for f in findings] == [("missing_rate", 10)]


def performance(start: int, rng: np.random.Generator, fpr: dict[str, float], n: int = 200) -> PerformanceAggregates:
    """``n`` labelled negatives per slice, each a false positive with the slice's FPR, and as many positives."""
    aggregate = PerformanceAggregates([["gender"]])
    matches = []
    for gender, rate in fpr.items():
        for _ in range(n):
            matches.append(
                (Prediction(start, "3", "production", int(rng.random() < rate), 0.5, (("gender", gender),)), 0)
            )
            matches.append((Prediction(start, "3", "production", 1, 0.9, (("gender", gender),)), 1))
    aggregate.update(matches)
    return aggregate


def test_the_performance_view_merges_the_trailing_windows_and_its_rules_judge_it() -> None:
    reporter = Reporter({}, window_ms=MINUTE, performance_view_ms=5 * MINUTE)
    rng = np.random.default_rng(3)
    rows: list = []
    findings: list = []
    fired = []
    alerting = Alerting([], {}, AlertingConfig(), {}, (), MINUTE)
    for minute in range(12):
        rates = {"M": 0.3, "F": 0.3 if minute < 4 else 0.45}  # F's FPR rises 15 points at minute 4
        aggregate = performance(minute * MINUTE, rng, rates, n=200)
        stored: list = []
        out_view: list = []
        partial = Partial("performance", ("credit", "3", "production"), minute * MINUTE, aggregate)
        reporter.report(partial, stored, findings, None, out_view)
        assert not [r for r in stored if r.window == PERFORMANCE_VIEW]  # the view is judged, never stored
        rows += out_view
        fired += [
            (a.rule, minute, a.segment)
            for a in alerting.report(stored + out_view, [], None, None).alerts
            if a.status == "firing"
        ]
    view = [r for r in rows if r.window == PERFORMANCE_VIEW]
    spans = {r.window_end_ms // MINUTE: (r.window_end_ms - r.window_start_ms) // MINUTE for r in view}
    for r in view:
        if r.metric == "labelled":  # the windows of its span, each of 800 labels (the first ones fewer)
            assert r.value == 800 * min(spans[r.window_end_ms // MINUTE], r.window_end_ms // MINUTE)
    # Before the change the view spans all five windows it may; with F's gap in sight, the fewest that show it.
    assert [spans[end] for end in range(1, 5)] == [5, 5, 5, 5]
    assert set(spans.values()) <= {1, 2, 4, 5} and min(spans.values()) < 5
    # At the budget's confidence, a minute's 200 negatives per slice cannot show the gap; the view's 1,000 do.
    assert [(rule, segment) for rule, _, segment in fired] == [("slice-fpr-gap", {"gender": "F"})]
    assert all(5 <= minute <= 9 for _, minute, _ in fired)


def test_stationary_slices_raise_no_fairness_finding() -> None:
    reporter = Reporter({}, window_ms=MINUTE)
    rng = np.random.default_rng(4)
    findings: list = []
    for minute in range(200):
        aggregate = PerformanceAggregates([["region"]])
        matches = []
        for region, share in (("north", 40), ("south", 40), ("east", 32)):  # small slices: rates stray
            for _ in range(share):
                matches.append(
                    (Prediction(0, "3", "production", int(rng.random() < 0.3), 0.5, (("region", region),)), 0)
                )
        aggregate.update(matches)
        reporter.report(Partial("performance", ("credit", "3", "production"), minute * MINUTE, aggregate), [], findings)
    assert [f for f in findings if f.kind == "fairness"] == []


def test_a_real_selection_rate_gap_is_a_fairness_finding() -> None:
    reporter = Reporter({}, window_ms=MINUTE)
    rng = np.random.default_rng(5)
    aggregate = PerformanceAggregates([["region"]])
    matches = [
        (Prediction(0, "3", "production", int(rng.random() < rate), 0.5, (("region", region),)), 0)
        for region, rate in (("north", 0.5), ("south", 0.2))
        for _ in range(400)
    ]
    aggregate.update(matches)
    findings: list = []
    reporter.report(Partial("performance", ("credit", "3", "production"), 0, aggregate), [], findings)
    assert [f.segment for f in findings if f.kind == "fairness"] == [(("region", "south"),)]
