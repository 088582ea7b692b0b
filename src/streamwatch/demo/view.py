"""The demo's live terminal view (rich) and its closing summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from streamwatch.demo.scenario import DemoScenario
from streamwatch.times import parse_rfc3339, to_ms

__all__ = ["DemoProgress", "estimate_table", "live_view", "summary_table"]


@dataclass
class DemoProgress:
    """Where a demo run is, shared between the run (which writes it) and the views (which read it)."""

    scenario: DemoScenario
    #: The webhook receiver's list of verified notifications, appended to as they arrive.
    notifications: list[dict[str, Any]] = field(default_factory=list)
    phase: str = "starting"
    events: int = 0  # published so far
    event_ms: int = 0  # event time of the last published event
    consumed: float = 0.0  # events the worker reports having consumed
    lag: float | None = None  # the worker's consumer lag
    published: bool = False  # every event of the scenario is published


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def live_view(state: DemoProgress) -> Group:
    """Progress, the incidents (injected now or not), worker figures, and the alerts received so far."""
    scenario = state.scenario
    minute = (state.event_ms - scenario.start_ms) // 60_000
    head = Table.grid(padding=(0, 2))
    head.add_row("phase", f"[bold]{state.phase}[/bold]")
    head.add_row("event time", f"{_clock(state.event_ms)} (minute {minute} of {scenario.minutes})")
    head.add_row("events published", f"{state.events:,}")
    head.add_row("events consumed by the worker", f"{int(state.consumed):,}")
    incidents = Table(title="injected incidents", expand=True)
    for column in ("incident", "minutes", "now"):
        incidents.add_column(column)
    for incident in scenario.incidents:
        now = "[red]active[/red]" if incident.start <= minute < incident.end else ""
        incidents.add_row(incident.description, f"{incident.start}-{incident.end}", now)
    alerts = Table(title="notifications received by the webhook (newest last)", expand=True)
    for column in ("status", "rule", "version", "where", "window"):
        alerts.add_column(column)
    received = [a for n in state.notifications for a in n["alerts"]]
    for alert in received[-12:]:
        colour = "red" if alert["status"] == "firing" else "green"
        where = alert.get("feature") or ",".join(f"{k}={v}" for k, v in (alert.get("segment") or {}).items())
        start = (to_ms(parse_rfc3339(alert["window"]["start"])) - scenario.start_ms) // 60_000
        alerts.add_row(
            f"[{colour}]{alert['status']}[/{colour}]",
            alert["rule"],
            f"{alert['model_version']} {alert['variant']}",
            where,
            f"minute {int(start)}",
        )
    return Group(Panel(head, title="streamwatch demo"), incidents, alerts)


def summary_table(summary: Any) -> Table:
    table = Table(title=f"what was injected, and what streamwatch caught ({summary.seconds:.0f} s)")
    for column in ("incident", "injected at", "detected by", "in window", "windows later"):
        table.add_column(column)
    for d in summary.detections:
        caught = d.rule is not None
        table.add_row(
            d.incident.description,
            f"minute {d.incident.start}",
            d.rule if caught else "[red]not detected[/red]",
            f"minute {d.minute}" if caught else "",
            str(d.delay) if caught else "",
        )
    return table


def estimate_table(summary: Any) -> Table:
    """Production's accuracy for gender=F: estimated from the first minute (no label needed), realized as
    labels come; during the fairness regression the two part, since the scores no longer match the risk."""
    table = Table(title="gender=F accuracy: estimated before labels, realized after")
    for column in ("minute", "estimated", "bounds", "realized", ""):
        table.add_column(column)
    for minute, value, lower, upper, realized in summary.estimates:
        if realized is None:
            verdict = "awaiting labels"
        elif lower <= realized <= upper:
            verdict = "within"
        else:
            verdict = "[red]OUTSIDE: assumption broke[/red]"
        table.add_row(
            str(minute),
            f"{value:.3f}",
            f"{lower:.3f}-{upper:.3f}",
            "" if realized is None else f"{realized:.3f}",
            verdict,
        )
    return table
