"""The false-alert budget: per-window rates that add up to the budget over a week of series."""

from __future__ import annotations

import numpy as np
import pytest

from streamwatch.core.budget import DEFAULT_SHARES, MAX_ALPHA, WEEK_MS, AlertBudget


def test_series_windows_and_for_multiply_back_to_the_budget() -> None:
    budget = AlertBudget(2.0)
    for kind, series, window_ms, for_windows in (("drift", 150, 60_000, 2), ("data_quality", 90, 300_000, 2)):
        alpha = budget.alpha(kind, series, window_ms, for_windows)
        weekly = series * (WEEK_MS / window_ms) * alpha**for_windows
        assert weekly == pytest.approx(2.0 * DEFAULT_SHARES[kind], rel=1e-9)


def test_more_series_and_smaller_windows_ask_for_rarer_crossings() -> None:
    budget = AlertBudget()
    assert budget.alpha("drift", 300, 60_000) < budget.alpha("drift", 30, 60_000)
    assert budget.alpha("drift", 30, 10_000) < budget.alpha("drift", 30, 3_600_000)
    assert budget.alpha("drift", 1, 86_400_000, 1) == MAX_ALPHA  # never looser than 1% a window
    assert budget.alpha("slo", 10, 60_000) == 1e-12  # a kind without a share gets none of the budget


def test_a_simulated_week_of_independent_series_spends_about_the_budget() -> None:
    """Bernoulli(alpha) breaches on independent windows, and a rule that needs two in a row: the firing
    episodes of a week match the budget's share (the check on the arithmetic the thresholds rest on)."""
    budget = AlertBudget(50.0)  # a large budget, so that a week holds enough episodes to count
    series, window_ms = 20, 60_000
    alpha = budget.alpha("drift", series, window_ms)
    windows = WEEK_MS // window_ms
    breaches = np.random.default_rng(3).random((series, windows)) < alpha
    starts = breaches[:, 1:] & breaches[:, :-1] & ~np.pad(breaches, ((0, 0), (1, 0)))[:, :-2]
    assert starts.sum() == pytest.approx(50.0 * DEFAULT_SHARES["drift"], rel=0.35)


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AlertBudget(0.0)
