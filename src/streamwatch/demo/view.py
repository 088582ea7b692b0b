"""The demo's live terminal view (rich) and its closing summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

__all__ = ["live_view", "summary_table"]


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def live_view(state: dict[str, Any]) -> Group:
    """Progress, the incidents (injected now or not), worker figures, and the alerts received so far."""
    scenario = state["scenario"]
    minute = (state["event_ms"] - scenario.start_ms) // 60_000
    head = Table.grid(padding=(0, 2))
    head.add_row("phase", f"[bold]{state['phase']}[/bold]")
    head.add_row("event time", f"{_clock(state['event_ms'])} (minute {minute} of {scenario.minutes})")
    head.add_row("events published", f"{state['events']:,}")
    head.add_row("events consumed by the worker", f"{int(state.get('consumed', 0)):,}")
    incidents = Table(title="injected incidents", expand=True)
    for column in ("incident", "minutes", "now"):
        incidents.add_column(column)
    for incident in scenario.incidents:
        now = "[red]active[/red]" if incident.start <= minute < incident.end else ""
        incidents.add_row(incident.description, f"{incident.start}-{incident.end}", now)
    alerts = Table(title="notifications received by the webhook (newest last)", expand=True)
    for column in ("status", "rule", "version", "where", "window"):
        alerts.add_column(column)
    received = [a for n in state["receiver"].notifications for a in n["alerts"]]
    for alert in received[-12:]:
        colour = "red" if alert["status"] == "firing" else "green"
        where = alert.get("feature") or ",".join(f"{k}={v}" for k, v in (alert.get("segment") or {}).items())
        start = (
            datetime.fromisoformat(alert["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000
            - scenario.start_ms
        ) // 60_000
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
