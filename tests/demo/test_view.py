"""The demo's live view and summary render what they are given (the demo itself runs in tests/test_cli.py)."""

from __future__ import annotations

from rich.console import Console

from streamwatch.demo.run import DemoSummary, Detection
from streamwatch.demo.scenario import DemoScenario
from streamwatch.demo.view import DemoProgress, live_view, summary_table


def text(renderable: object) -> str:
    console = Console(record=True, width=160)
    console.print(renderable)
    return console.export_text()


def test_the_live_view_shows_progress_active_incidents_and_notifications() -> None:
    scenario = DemoScenario(minutes=30, per_minute=10)
    alert = {
        "status": "firing",
        "rule": "slice-fpr-gap",
        "model_version": "3.1.0",
        "variant": "production",
        "segment": {"gender": "F"},
        "window": {"start": "2026-11-18T08:29:00Z"},
    }
    state = DemoProgress(
        scenario,
        notifications=[{"alerts": [alert]}],
        phase="serving traffic",
        events=1234,
        event_ms=scenario.start_ms + 16 * 60_000 + 5,
        consumed=1200.0,
    )
    shown = text(live_view(state))
    assert "serving traffic" in shown and "minute 16 of 30" in shown and "1,234" in shown
    fairness = next(line for line in shown.splitlines() if "gender=F scored" in line)
    assert "active" in fairness  # minute 16 is inside the fairness incident (15 to 21)
    assert "slice-fpr-gap" in shown and "gender=F" in shown and "firing" in shown


def test_the_summary_says_what_was_caught_and_what_was_not() -> None:
    scenario = DemoScenario(minutes=30, per_minute=10)
    drift, embedding, fairness, latency = scenario.incidents
    summary = DemoSummary(
        100,
        [
            Detection(drift, "feature-drift", 11),
            Detection(embedding, "embedding-drift", 11),
            Detection(fairness),
            Detection(latency, "slo-burn-page", 20),
        ],
        [],
        [],
        None,
        80.0,
    )
    shown = text(summary_table(summary))
    assert "feature-drift" in shown and "minute 11" in shown and "not detected" in shown
    assert "the purpose embedding moves with debt_ratio" in shown and "embedding-drift" in shown
    assert not summary.ok
