"""Alert rules: pending, firing, resolved, per series, on rows from the real pipeline too."""

from __future__ import annotations

import dataclasses
import math

from streamwatch.alerts.rules import RuleEngine, fingerprint
from streamwatch.config.models import RuleConfig
from streamwatch.core.records import PERFORMANCE_VIEW, Finding, MetricRow
from streamwatch.pipeline.pipeline import Pipeline
from tests.pipeline.test_pipeline import START, events, profile


def rule(**fields) -> RuleConfig:  # type: ignore[no-untyped-def]
    base = {"name": "fpr", "kind": "fairness", "when": {"metric": "fpr", "op": ">", "threshold": 0.3}}
    return RuleConfig(**(base | fields))


def fpr(minute: int, value: float, gender: str = "F", variant: str = "production") -> MetricRow:
    return MetricRow(
        "credit", "3", variant, minute * 60_000, (minute + 1) * 60_000, "fpr", value, None, (("gender", gender),)
    )


def statuses(engine: RuleEngine, rows: list[MetricRow]) -> list[tuple[str, str]]:
    return [(t.status, dict(t.segment)["gender"]) for t in engine.evaluate(rows)]


def test_a_breach_fires_after_for_windows_and_resolves_once_for_that_slice_alone() -> None:
    engine = RuleEngine([rule(for_windows=3)])
    seen = []
    for minute, (female, male) in enumerate([(0.1, 0.1), (0.5, 0.1), (0.5, 0.2), (0.6, 0.1), (0.7, 0.1), (0.1, 0.1)]):
        seen += [(minute, *s) for s in statuses(engine, [fpr(minute, female, "F"), fpr(minute, male, "M")])]
    assert seen == [(1, "pending", "F"), (3, "firing", "F"), (5, "resolved", "F")]


def test_a_pending_series_that_recovers_clears_silently_and_nan_never_breaches() -> None:
    engine = RuleEngine([rule(for_windows=2)])
    assert statuses(engine, [fpr(0, 0.9)]) == [("pending", "F")]
    assert statuses(engine, [fpr(1, 0.1), fpr(2, math.nan), fpr(3, 0.9)]) == [("pending", "F")]


def test_a_window_reported_again_replaces_its_verdict_instead_of_counting_twice() -> None:
    engine = RuleEngine([rule(for_windows=2)])
    assert statuses(engine, [fpr(0, 0.9)]) == [("pending", "F")]
    assert statuses(engine, [fpr(0, 0.95)]) == []  # the same window, more labels: still one breach
    assert statuses(engine, [fpr(0, 0.1)]) == []  # and now none (a pending series clears silently)
    assert statuses(engine, [fpr(1, 0.9)]) == [("pending", "F")]
    assert statuses(engine, [fpr(0, 0.9)]) == []  # older than the last judged window: ignored


def test_selectors_and_fingerprints() -> None:
    engine = RuleEngine([rule(variant="canary", segment={"gender": "M"})])
    assert statuses(engine, [fpr(0, 0.9, "M"), fpr(0, 0.9, "F", "canary")]) == []
    [transition] = engine.evaluate([fpr(0, 0.9, "M", "canary")])
    assert transition.status == "firing" and transition.variant == "canary"
    assert transition.fingerprint == fingerprint("fpr", "credit", "3", "canary", None, (("gender", "M"),))
    assert len({fingerprint("r", "m", "1", v, None, ()) for v in ("production", "canary", "shadow")}) == 3


def test_on_the_pipelines_rows_a_stationary_stream_raises_nothing_and_a_drift_fires_then_resolves() -> None:
    # Wasserstein decides numeric drift (PSI on 600-value windows over 200 bins is biased upwards).
    psi = rule(
        name="income-drift", kind="drift", feature="income", when={"metric": "wasserstein", "op": ">", "threshold": 0.1}
    )
    raws, _ = events(minutes=4, drift_minute=2)
    pipeline = Pipeline({("credit", "3"): profile()}, rolling_windows=0)
    rows = pipeline.process(raws).rows + pipeline.flush().rows
    engine = RuleEngine([psi])
    transitions = engine.evaluate(rows)
    assert [(t.status, t.window_start_ms - START) for t in transitions] == [
        ("firing", 120_000),
        ("resolved", 180_000),
    ]
    quiet, _ = events(minutes=4, drift_minute=99)
    stationary = Pipeline({("credit", "3"): profile()}, rolling_windows=0)
    assert RuleEngine([psi]).evaluate(stationary.process(quiet).rows + stationary.flush().rows) == []


def window_rows(minute: int, variant: str = "production") -> list[MetricRow]:
    # What says a window was reported, whatever it found.
    return [MetricRow("credit", "3", variant, minute * 60_000, (minute + 1) * 60_000, "requests", 100.0)]


def drift_finding(minute: int, feature: str = "income", value: float = 0.3) -> Finding:
    return Finding(
        "drift",
        "warning",
        "credit",
        "3",
        "production",
        minute * 60_000,
        (minute + 1) * 60_000,
        "wasserstein",
        value,
        0.1,
        feature,
        (),
        {"example_request_ids": [f"r{minute}"]},
    )


def test_a_finding_rule_fires_on_findings_and_resolves_when_a_reported_window_has_none() -> None:
    engine = RuleEngine([RuleConfig(name="drift", kind="drift", when={"finding": "drift"}, **{"for": "2m"})])
    assert [t.status for t in engine.evaluate(window_rows(0), [drift_finding(0)])] == ["pending"]
    [firing] = engine.evaluate(window_rows(1), [drift_finding(1), drift_finding(1, "age", 0.05)][:1])
    assert (firing.status, firing.feature, firing.value, firing.threshold) == ("firing", "income", 0.3, 0.1)
    assert firing.example_request_ids == ("r1",) and "example_request_ids" not in firing.evidence
    assert engine.evaluate([], []) == []  # nothing reported: nothing judged
    [resolved] = engine.evaluate(window_rows(2), [])
    assert (resolved.status, resolved.ends_at_ms, math.isnan(resolved.value)) == ("resolved", 180_000, True)


def test_a_metric_rule_without_threshold_uses_the_rows_calibrated_one_and_a_vanished_series_resolves() -> None:
    engine = RuleEngine([RuleConfig(name="psi", kind="drift", when={"metric": "psi"})])

    def psi(minute: int, value: float, feature: str) -> MetricRow:
        return MetricRow(
            "credit", "3", "production", minute * 60_000, (minute + 1) * 60_000, "psi", value, feature, threshold=0.25
        )

    assert [t.feature for t in engine.evaluate([psi(0, 0.3, "income"), psi(0, 0.2, "age")])] == ["income"]
    # The income series is not in the next window's rows (say, too few values): it resolves.
    assert [(t.status, t.feature) for t in engine.evaluate([psi(1, 0.1, "age")])] == [("resolved", "income")]


def test_parity_judges_each_slice_against_the_best_slice_of_its_segment() -> None:
    engine = RuleEngine(
        [RuleConfig(name="gap", kind="fairness", when={"metric": "fpr", "parity": True, "threshold": 0.1})]
    )
    rows = [fpr(0, 0.05, "M"), fpr(0, 0.30, "F"), fpr(0, 0.07, "X")]
    [t] = engine.evaluate(rows)
    assert (t.segment, t.metric, round(t.value, 6), t.evidence["best_slice"]) == (
        (("gender", "F"),),
        "fpr_gap",
        0.25,
        {"gender": "M"},
    )
    assert RuleEngine(engine.rules).evaluate([fpr(0, 0.9, "F")]) == []  # one slice: nothing to compare


def test_drop_compares_with_the_models_baseline_and_needs_one() -> None:
    rule = RuleConfig(name="auc", kind="performance", when={"metric": "roc_auc", "drop": 0.05})

    def auc(value: float, model: str = "credit") -> MetricRow:
        return MetricRow(model, "3", "production", 0, 60_000, "roc_auc", value)

    engine = RuleEngine([rule], baselines={"credit": {"roc_auc": 0.9}})
    [t] = engine.evaluate([auc(0.84), auc(0.1, "fraud")])
    assert (t.model, t.threshold, t.op, t.evidence) == ("credit", 0.9 - 0.05, "<", {"baseline": 0.9, "drop": 0.05})


def test_bad_rules_get_one_line_errors_naming_them() -> None:
    import pytest
    from pydantic import ValidationError

    for when, words in [
        ({"finding": "drift", "threshold": 1}, "takes no threshold"),
        ({"metric": "fpr", "parity": True}, "needs a threshold"),
        ({}, "needs `metric` or `finding`"),
    ]:
        with pytest.raises(ValidationError, match=words):
            RuleConfig(name="r", kind="drift", when=when)


def test_performance_views_are_ordered_by_their_end_since_their_span_changes() -> None:
    """A view ending later may start earlier (a wider span): it is newer, not a window judged already."""

    def view(start: int, end: int, value: float) -> MetricRow:
        row = fpr(start, value)
        return dataclasses.replace(row, window_end_ms=end * 60_000, window=PERFORMANCE_VIEW)

    engine = RuleEngine([rule(for_windows=2, view="performance")])
    assert statuses(engine, [view(10, 11, 0.9)]) == [("pending", "F")]
    assert statuses(engine, [view(8, 12, 0.8)]) == [("firing", "F")]  # starts earlier, ends later: newer
    assert statuses(engine, [view(11, 12, 0.85)]) == []  # the same end again: judged anew, still firing
    assert statuses(engine, [view(9, 11, 0.1)]) == []  # ends earlier: older, ignored
