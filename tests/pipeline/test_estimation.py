"""Performance estimated before labels, end to end: a calibrated binary classifier's windows report
estimates with bounds from their first prediction; the built-in rules see a covariate shift that lowers
real performance before any label arrives, and a concept drift once labels part from the estimate;
neither fires on stationary traffic."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.alerts.rules import RuleEngine
from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.core.budget import AlertBudget
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import Lineage, build_profile
from tests.pipeline.test_pipeline import START

RULES = [r for r in DEFAULT_RULES if r.name in ("estimated-performance-drop", "estimate-diverged")]
LINEAGE = Lineage(
    model="churn",
    model_version="2",
    data_uri="train.parquet",
    rows=20_000,
    content_sha256="c" * 64,
    created_at="2026-11-23T00:00:00Z",
    streamwatch_version="0.1.0",
)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(21)
    x = rng.normal(0, 1, 20_000)
    score = np.round(sigmoid(2.5 * x), 4)
    return build_profile(
        {
            "x": x,
            "score": score,
            "label": (rng.random(score.size) < score).astype(int),
            "prediction": (score >= 0.5).astype(int),
            "gender": rng.choice(np.array(["F", "M"], dtype=object), score.size),
        },
        lineage=LINEAGE,
        label_column="label",
        score_column="score",
        prediction_column="prediction",
        segments=["gender"],
    )


PROFILE = reference()


def run(incident: str | None, minutes: int = 50, per_minute: int = 240, label_delay_minutes: int = 6) -> dict[str, Any]:
    """Minutes of traffic, an incident from minute 20, labels ``label_delay_minutes`` late; what it reported."""
    rng = np.random.default_rng(22)
    encoder = Encoder(clock_ms=now_ms)
    pipeline = Pipeline(
        {("churn", "2"): PROFILE},
        slices={"churn": [["gender"]]},
        performance_view_ms=10 * 60_000,
        rolling_windows=0,
        budget=AlertBudget(1.0),
    )
    engine = RuleEngine(RULES)
    pending: list[tuple[int, bytes]] = []
    fired: dict[str, list[tuple[int, dict[str, str]]]] = {r.name: [] for r in RULES}
    rows = []
    for minute in range(minutes):
        active = incident is not None and minute >= 20
        spread = 0.25 if active and incident == "covariate" else 1.0
        x = rng.normal(0, spread, per_minute)
        score = np.round(sigmoid(2.5 * x), 4)
        gender = np.array(["F", "M"])[rng.integers(0, 2, per_minute)]
        label = rng.random(per_minute) < score
        if active and incident == "concept":  # P(y | x) turned around for gender=F
            label = np.where(gender == "F", rng.random(per_minute) < 1 - score, label)
        batch = []
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            request = f"c{minute}-{i}"
            batch.append(
                encoder.prediction(
                    "churn",
                    "2",
                    request,
                    20.0,
                    {"x": float(x[i])},
                    int(score[i] >= 0.5),
                    float(score[i]),
                    "production",
                    "ok",
                    None,
                    {"gender": str(gender[i])},
                    None,
                    at,
                    None,
                )
            )
            due = at + label_delay_minutes * 60_000
            pending.append((due, encoder.label(model="churn", request_id=request, label=int(label[i]), timestamp=due)))
        now = START + (minute + 1) * 60_000
        batch += [raw for due, raw in pending if due < now]
        pending = [(due, raw) for due, raw in pending if due >= now]
        out = pipeline.process(batch)
        rows += out.rows
        for transition in engine.evaluate(out.rows + out.view, out.findings):
            if transition.status == "firing":
                # The minute of the newest window judged (a view spans the minutes before it too).
                fired[transition.rule].append(
                    ((transition.window_end_ms - START) // 60_000 - 1, dict(transition.segment or {}))
                )
    return {"fired": fired, "rows": rows}


@pytest.fixture(scope="module")
def stationary() -> dict[str, Any]:
    return run(None)


def test_estimates_come_with_bounds_from_the_first_window_and_hold_the_realized_figures(stationary: dict) -> None:
    rows = stationary["rows"]
    first = [r for r in rows if r.window_start_ms == START and r.metric.startswith("estimated_")]
    assert {r.metric for r in first} == {f"estimated_{m}" for m in ("accuracy", "precision", "recall", "f1", "roc_auc")}
    assert {r.segment for r in first} == {(), (("gender", "F"),), (("gender", "M"),)}
    assert all(r.lower <= r.value <= r.upper and r.threshold is not None for r in first)
    estimated = {(r.window_start_ms, r.segment): r for r in rows if r.metric == "estimated_accuracy"}
    realized = {
        (r.window_start_ms, r.segment): r.value for r in rows if r.metric == "accuracy" and r.window == "tumbling"
    }
    held = Counter(estimated[k].lower <= v <= estimated[k].upper for k, v in realized.items() if k in estimated)
    assert held[True] > 100 and held[False] <= 0.02 * sum(held.values())


def test_stationary_traffic_raises_neither_rule(stationary: dict) -> None:
    assert stationary["fired"] == {"estimated-performance-drop": [], "estimate-diverged": []}


def test_a_covariate_shift_is_seen_before_its_labels_arrive() -> None:
    fired = run("covariate")["fired"]
    assert fired["estimate-diverged"] == []  # the concept held: the labels agree with the estimate
    overall = [minute for minute, segment in fired["estimated-performance-drop"] if not segment]
    # Three views running from minute 21, while the labels of the shift are six minutes away.
    assert overall and 20 <= overall[0] <= 23


def test_a_concept_drift_parts_the_labels_from_the_estimate_for_its_slice() -> None:
    fired = run("concept")["fired"]
    assert fired["estimated-performance-drop"] == []  # predictions alone look as they did
    slices = {tuple(segment.items()) for _, segment in fired["estimate-diverged"]}
    assert (("gender", "F"),) in slices and (("gender", "M"),) not in slices
    first = min(minute for minute, segment in fired["estimate-diverged"] if segment == {"gender": "F"})
    assert 20 <= first <= 20 + 6 + 10  # once the labels of the drifted minutes arrive
