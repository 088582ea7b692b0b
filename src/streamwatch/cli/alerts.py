"""``streamwatch alerts``, ``silence`` and ``notify``: what fires, muting it, and testing a channel."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from streamwatch.cli.app import (
    ConfigOption,
    alerts_app,
    notify_app,
    settings_from,
    silence_app,
    wide_console,
)
from streamwatch.clock import now_ms
from streamwatch.errors import StreamwatchError


@alerts_app.command("list")
def alerts_list(
    config: ConfigOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Resolved alerts too.")] = False,
) -> None:
    """Alerts that are pending or firing now (their latest transition), newest first."""
    from streamwatch.cli.alert_admin import alert_history

    histories, source = alert_history(settings_from(config))
    latest = sorted((h.latest for h in histories.values()), key=lambda e: e.timestamp, reverse=True)
    shown = [e for e in latest if all_ or e.status != "resolved"]
    table = Table(title=f"{len(shown)} alert{'s' if len(shown) != 1 else ''}")
    for column in ("fingerprint", "status", "severity", "rule", "model", "since", "reason"):
        table.add_column(column)
    for e in shown:
        since = e.starts_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            e.fingerprint, e.status, e.severity, e.rule, f"{e.model} {e.model_version} {e.variant}", since, e.reason
        )
    wide_console().print(table)
    typer.echo(f"read from {source}", err=True)


@alerts_app.command("show")
def alerts_show(
    fingerprint: Annotated[str, typer.Argument(help="An alert's fingerprint, or its first characters.")],
    config: ConfigOption = None,
) -> None:
    """One alert: its latest state as JSON, then every transition."""
    from streamwatch.cli.alert_admin import alert_history, find_alert

    histories, source = alert_history(settings_from(config))
    history = find_alert(histories, fingerprint)
    console = wide_console()
    console.print_json(history.latest.model_dump_json())
    table = Table(title="transitions")
    for column in ("at", "status", "window", "value", "threshold"):
        table.add_column(column)
    for e in history.transitions:
        window = f"{e.window.start:%H:%M}-{e.window.end:%H:%M}" if e.window else ""
        table.add_row(f"{e.timestamp:%Y-%m-%d %H:%M:%S}", e.status, window, str(e.value), str(e.threshold))
    console.print(table)
    typer.echo(f"read from {source}", err=True)


@silence_app.command("add")
def silence_add(
    matchers: Annotated[
        list[str], typer.Argument(help="label=value, label!=value, label=~regex or label!~regex; all must match.")
    ],
    duration: Annotated[str, typer.Option("--duration", "-d", help="How long, e.g. 30m, 2h, 1d.")] = "2h",
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (shown in silence list).")] = "",
    author: Annotated[str | None, typer.Option(help="Who; default: $USER.")] = None,
    config: ConfigOption = None,
) -> None:
    """Mute notifications of the alerts that match, e.g. `silence add model=credit feature=~"inc.*" -d 4h`."""
    import getpass

    from streamwatch.cli.alert_admin import add_silence
    from streamwatch.config.durations import parse_duration

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise StreamwatchError(f"--duration {duration!r}: {exc}") from None
    try:
        silence = add_silence(
            settings_from(config), matchers, int(length.total_seconds() * 1000), author or getpass.getuser(), comment
        )
    except ValueError as exc:
        raise StreamwatchError(f"matcher: {exc}") from None
    typer.echo(f"silence {silence.silence_id} until {silence.ends_at_ms}: {' '.join(silence.matchers)}")


@silence_app.command("list")
def silence_list(
    config: ConfigOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Expired silences too.")] = False,
) -> None:
    """Silences in force (or all of them)."""
    import time

    from streamwatch.cli.alert_admin import list_silences

    now = now_ms()
    silences = [s for s in list_silences(settings_from(config)) if all_ or s.active(now) or s.starts_at_ms > now]
    table = Table(title=f"{len(silences)} silence{'s' if len(silences) != 1 else ''}")
    for column in ("id", "state", "matchers", "ends", "by", "comment"):
        table.add_column(column)
    for s in silences:
        state = "active" if s.active(now) else ("pending" if s.starts_at_ms > now else "expired")
        ends = time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.ends_at_ms / 1000))
        table.add_row(s.silence_id, state, " ".join(s.matchers), ends, s.created_by, s.comment)
    wide_console().print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id, or its first characters.")],
    config: ConfigOption = None,
) -> None:
    """End a silence now."""
    from streamwatch.cli.alert_admin import expire_silence

    silence = expire_silence(settings_from(config), silence_id)
    typer.echo(f"silence {silence.silence_id} expired")


@notify_app.command("test")
def notify_test(
    channel: Annotated[str, typer.Argument(help="A channel name from the config file.")],
    config: ConfigOption = None,
) -> None:
    """Send a sample alert to CHANNEL, to check its URL, key and formatting."""
    from streamwatch.cli.alert_admin import notify_test as send_test

    notification = send_test(settings_from(config), channel)
    typer.echo(f"sent a test notification ({notification.notification_id}) to {channel}: accepted")
