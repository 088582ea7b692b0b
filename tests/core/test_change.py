"""Change detection: river's detectors, fed per-window values, fire after a change and not before."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift

from streamwatch.core.change import ChangeDetector

MINUTE = 60_000


def series(change_at: int, before: float, after: float, n: int = 200, noise: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(4)
    values = np.where(np.arange(n) < change_at, before, after) + rng.normal(0, noise, n)
    return np.clip(values, 0, 1)


@pytest.mark.parametrize(("name", "params", "delay"), [("page_hinkley", {}, 20), ("kswin", {}, 20), ("adwin", {}, 60)])
def test_detectors_fire_after_the_change_only(name: str, params: dict, delay: int) -> None:
    detector = ChangeDetector(name, **params)
    values = series(change_at=120, before=0.05, after=0.35)
    for minute, value in enumerate(values):
        detector.update(minute * MINUTE, float(value))
    assert detector.detections, name
    first = detector.detections[0] // MINUTE
    assert 120 <= first <= 120 + delay, (name, first)
    stationary = ChangeDetector(name, **params)
    for minute, value in enumerate(series(change_at=10_000, before=0.05, after=0.05)):
        stationary.update(minute * MINUTE, float(value))
    assert stationary.detections == [], name


def test_detections_are_exactly_rivers() -> None:
    values = series(change_at=100, before=0.1, after=0.4)
    ours, theirs = ChangeDetector("adwin", delta=0.01), drift.ADWIN(delta=0.01, clock=1)
    expected = []
    for i, value in enumerate(values):
        ours.update(i, float(value))
        theirs.update(float(value))
        if theirs.drift_detected:
            expected.append(i)
        assert ours.drift_detected == theirs.drift_detected
    assert ours.detections == expected


def test_empty_windows_are_skipped_and_names_checked() -> None:
    detector = ChangeDetector()
    detector.update(0, float("nan"))
    assert not detector.drift_detected and detector.detections == []
    with pytest.raises(ValueError, match="unknown detector 'cusum'"):
        ChangeDetector("cusum")
    assert ChangeDetector("kswin").params == {"seed": 0}
    assert ChangeDetector("adwin", clock=8).params == {"clock": 8}
