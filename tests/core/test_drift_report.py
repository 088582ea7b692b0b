"""A window's drift report: the right features flagged, every statistic reported, rows exportable."""

from __future__ import annotations

import json

import numpy as np

from streamwatch.core import CategoryCounts, NumericHistogram, bin_edges
from streamwatch.core.drift_report import WindowKey, evaluate_drift
from streamwatch.core.records import MetricRow

KEY = WindowKey("credit-risk", "3.1.0", "production", 1_763_900_000_000, 1_763_900_060_000)


def setup(shift: float, window: int = 2_000) -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(2)
    references, windows, scales = {}, {}, {}
    for name, loc in (("income", shift), ("age", 0.0)):
        training = rng.normal(size=20_000)
        reference = NumericHistogram(bin_edges(training))
        reference.update(training)
        current = NumericHistogram(reference.edges)
        current.update(rng.normal(loc, 1.0, window))
        references[name], windows[name], scales[name] = reference, current, float(training.std())
    reference_city, current_city = CategoryCounts(["north", "south"]), CategoryCounts(["north", "south"])
    reference_city.update(rng.choice(["north", "south"], 20_000).tolist())
    current_city.update(rng.choice(["north", "south", "west"], window, p=[0.5, 0.48, 0.02]).tolist())
    references["city"], windows["city"] = reference_city, current_city
    return references, windows, scales


def test_only_the_shifted_feature_drifts() -> None:
    references, windows, scales = setup(shift=0.5)
    summary = evaluate_drift(KEY, references, windows, scales=scales, reference_id="sha256:ab")
    assert summary.drifted == ["income"] and summary.share_drifted == 1 / 3
    [finding] = summary.findings
    assert (finding.kind, finding.feature, finding.metric) == ("drift", "income", "wasserstein")
    assert finding.value >= 0.1 and finding.evidence["n"] == 2_000 and finding.reference == "sha256:ab"
    metrics = {(r.feature, r.metric) for r in summary.rows}
    for metric in ("psi", "ks", "ks_pvalue", "js", "wasserstein", "hellinger"):
        assert ("income", metric) in metrics
    for metric in ("chi2", "chi2_pvalue", "cramers_v", "js", "psi", "unseen"):
        assert ("city", metric) in metrics
    unseen = next(r for r in summary.rows if (r.feature, r.metric) == ("city", "unseen"))
    assert 0.01 < unseen.value < 0.03 and unseen.threshold == 0.05


def test_no_drift_without_a_shift_and_small_windows_are_not_judged() -> None:
    references, windows, scales = setup(shift=0.0)
    assert evaluate_drift(KEY, references, windows, scales=scales).drifted == []
    references, windows, scales = setup(shift=3.0, window=10)
    summary = evaluate_drift(KEY, references, windows, scales=scales)
    assert summary.drifted == [] and np.isnan(summary.share_drifted)


def test_the_chi_square_threshold_is_cramers_v_and_only_its_row_carries_it() -> None:
    """A threshold under "chi2" is a Cramér's V: the chi2 row once carried it and read ~4 against 0.1."""
    references, windows, scales = setup(shift=0.0)
    row = {r.metric: r for r in evaluate_drift(KEY, references, windows, scales=scales).rows if r.feature == "city"}
    assert row["chi2"].threshold is None and row["cramers_v"].threshold == 0.1
    assert row["chi2"].value > 100 * row["cramers_v"].value  # two scales: the statistic grows with the counts
    calibrated = evaluate_drift(KEY, references, windows, scales=scales, thresholds={"city": {"chi2": 0.03}})
    assert {r.metric: r.threshold for r in calibrated.rows if r.feature == "city"}["cramers_v"] == 0.03


def test_thresholds_can_be_overridden_per_feature() -> None:
    references, windows, scales = setup(shift=0.5)
    summary = evaluate_drift(KEY, references, windows, scales=scales, thresholds={"income": {"wasserstein": 5.0}})
    assert summary.drifted == []


def test_rows_export_as_documented() -> None:
    row = MetricRow(
        "m",
        "1",
        "canary",
        KEY.start_ms,
        KEY.end_ms,
        "ks_pvalue",
        float("nan"),
        feature="age",
        segment=(("gender", "F"),),
        window="1h",
    )
    exported = row.export()
    assert exported == {
        "model": "m",
        "model_version": "1",
        "variant": "canary",
        "window_start": "2025-11-23T12:13:20.000Z",
        "window_end": "2025-11-23T12:14:20.000Z",
        "window": "1h",
        "metric": "ks_pvalue",
        "feature": "age",
        "segment": {"gender": "F"},
        "value": None,
        "threshold": None,
        "lower": None,
        "upper": None,
        "reference": None,
    }
    json.dumps(exported, allow_nan=False)
