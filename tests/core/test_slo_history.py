"""SLO history: trailing sums over the burn-rate windows, and the budget over the period."""

from __future__ import annotations

import pytest

from streamwatch.core.slo import SLO, SLICounts
from streamwatch.core.slo_history import SLOHistory

MINUTE = 60_000


def test_trailing_burn_rates_and_budget() -> None:
    slo = SLO(target=0.99, period_minutes=60)
    history = SLOHistory(slo, MINUTE)
    for minute in range(90):  # 100 requests a minute; the last 5 minutes have 10 errors each
        bad = 10 if minute >= 85 else 0
        history.add(minute * MINUTE, SLICounts.from_counts(slo, 100 - bad, 100))
    rows, alerts = dict(history.report(90 * MINUTE)[0]), history.report(90 * MINUTE)[1]
    assert rows["burn_rate_5m"] == pytest.approx(10.0)  # 10% errors against a 1% budget
    assert rows["burn_rate_30m"] == pytest.approx(50 / 3000 / 0.01)
    assert rows["burn_rate_1h"] == pytest.approx(50 / 6000 / 0.01)
    # Only the last hour (the SLO period) counts towards the budget: 50 bad of 6000 against 60 allowed.
    assert rows["error_budget_consumed"] == pytest.approx(50 / 60)
    assert rows["error_budget_remaining"] == pytest.approx(10 / 60)
    assert "burn_rate_3d" in rows  # a window longer than the history sums what there is
    assert all(alert.factor <= 6 for alert in alerts)  # 14.4x needs the 1h window at 14.4x too: it is at 0.83x


def test_windows_longer_than_the_burn_windows_skip_them() -> None:
    slo = SLO(target=0.999)
    history = SLOHistory(slo, 60 * MINUTE)  # hourly windows: 5m and 30m burn rates mean nothing
    history.add(0, SLICounts.from_counts(slo, 1000, 1000))
    names = {name for name, _ in history.report(60 * MINUTE)[0]}
    assert "burn_rate_5m" not in names and "burn_rate_30m" not in names and "burn_rate_1h" in names
    with pytest.raises(ValueError, match="good <= total"):
        SLICounts.from_counts(slo, 5, 4)
