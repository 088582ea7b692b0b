"""``streamwatch demo`` and ``streamwatch traffic``: the demo scenario on a bare machine, or into a running stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamwatch.cli.app import (
    ConfigOption,
    app,
    settings_from,
)
from streamwatch.clock import now_ms
from streamwatch.errors import StreamwatchError


@app.command()
def demo(
    minutes: Annotated[int, typer.Option(min=6, max=600, help="Minutes of event time the scenario lasts.")] = 30,
    per_minute: Annotated[int, typer.Option(min=50, max=20_000, help="Requests served per minute.")] = 400,
    speed: Annotated[float, typer.Option(min=1, max=600, help="How much faster than real time.")] = 30.0,
    out: Annotated[Path, typer.Option(metavar="DIR", help="Where the data, logs and report go.")] = Path(
        "streamwatch-data/demo"
    ),
    live: Annotated[bool, typer.Option(help="A live view (default: when the output is a terminal).")] = True,
) -> None:
    """Run the whole path on an incident scenario: broker, SDK, worker, ClickHouse, alerts, report.

    Nothing needs installing: a local Kafka-protocol broker and embedded ClickHouse are started here.
    """
    from rich.live import Live

    from streamwatch.demo.run import run_demo
    from streamwatch.demo.view import DemoProgress, estimate_table, live_view, summary_table

    console = Console()
    if live and console.is_terminal:
        with Live(console=console, refresh_per_second=4) as screen:
            summary = run_demo(minutes, per_minute, speed, out, view=lambda state: screen.update(live_view(state)))
    else:
        import time

        last = [0.0]

        def plain(state: DemoProgress) -> None:
            if time.monotonic() - last[0] >= 10:
                last[0] = time.monotonic()
                typer.echo(
                    f"{state.phase}: {state.events:,} events published, "
                    f"{len(state.notifications)} notifications received"
                )

        summary = run_demo(minutes, per_minute, speed, out, view=plain)
    console.print(summary_table(summary))
    if summary.estimates:
        console.print(estimate_table(summary))
    console.print(
        f"notifications received and verified: {len(summary.notifications)} "
        f"(rejected: {summary.rejected_notifications})"
    )
    console.print(f"retrain requests consumed by examples/retrain_consumer.py: {len(summary.retrain_requests)}")
    if summary.false_alarms:
        console.print("also fired, as consequences of the incidents unless marked: " + "; ".join(summary.false_alarms))
    console.print(f"alerts that fired outside every incident: {summary.outside_incidents}")
    console.print(f"report: {summary.report}  (worker log: {out / 'worker.log'})")
    if not summary.ok:
        raise StreamwatchError("demo: an injected incident was not detected (see the table above)")
    console.print("[green]demo ok[/green]")


@app.command()
def traffic(
    config: ConfigOption = None,
    minutes: Annotated[int, typer.Option(min=6, max=100_000, help="Minutes of event time per scenario.")] = 30,
    per_minute: Annotated[int, typer.Option(min=1, max=100_000, help="Requests served per minute.")] = 400,
    speed: Annotated[float, typer.Option(min=0.01, max=600, help="How much faster than real time.")] = 1.0,
    loop: Annotated[bool, typer.Option(help="Start the scenario again when it ends.")] = True,
    profiles_out: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Also write the scenario's reference profiles here.")
    ] = None,
    profiles_only: Annotated[bool, typer.Option(help="Only write the profiles (with --profiles-out).")] = False,
) -> None:
    """Publish the demo's credit-risk scenario (with its incidents) to the configured Kafka, e.g. in docker-compose."""

    from streamwatch.demo.run import publish_scenario
    from streamwatch.demo.scenario import DemoScenario

    if profiles_out is not None:
        profiles_out.mkdir(parents=True, exist_ok=True)
        for (model, version), profile in DemoScenario(minutes, per_minute).reference_profiles().items():
            path = profiles_out / f"{model}-{version}.json"
            path.write_text(profile.model_dump_json(), encoding="utf-8")
            typer.echo(f"wrote {path}")
    elif profiles_only:
        raise StreamwatchError("--profiles-only: give --profiles-out DIR")
    if profiles_only:
        return
    settings = settings_from(config)
    round_ = 0
    while True:
        scenario = DemoScenario(minutes, per_minute, start_ms=now_ms(), seed=7 + round_)
        sent = publish_scenario(settings, scenario, speed)
        typer.echo(f"scenario {round_ + 1}: {sent:,} events published")
        round_ += 1
        if not loop:
            return
