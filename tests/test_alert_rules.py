"""Alert rules: pending, firing, resolved, per series, on rows from the real pipeline too."""

from __future__ import annotations

import math

from streamwatch.alert_rules import RuleEngine, fingerprint
from streamwatch.config import RuleConfig
from streamwatch.core.records import MetricRow
from streamwatch.pipeline import Pipeline

from .test_pipeline import START, events, profile


def rule(**fields) -> RuleConfig:  # type: ignore[no-untyped-def]
    base = {"name": "fpr", "kind": "fairness", "when": {"metric": "fpr", "op": ">", "threshold": 0.3}}
    return RuleConfig(**(base | fields))


def fpr(minute: int, value: float, gender: str = "F", variant: str = "production") -> MetricRow:
    return MetricRow("credit", "3", variant, minute * 60_000, (minute + 1) * 60_000, "fpr", value, None,
                     (("gender", gender),))  # fmt: skip


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
