"""``streamwatch replay`` and ``streamwatch report``: files through the pipeline, and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamwatch.cli.app import (
    ConfigOption,
    app,
    settings_from,
)
from streamwatch.clock import now_ms
from streamwatch.errors import StreamwatchError
from streamwatch.times import parse_rfc3339, to_ms


@app.command()
def replay(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="EVENTS.jsonl", help="JSON Lines files of events (.gz too), replayed in order."),
    ],
    reference: Annotated[
        list[Path] | None,
        typer.Option("--reference", "-r", metavar="REF.json", help="A reference profile; repeat for more."),
    ] = None,
    config: ConfigOption = None,
    out: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Also write the JSON Lines export into this directory.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1_000_000, help="Lines per pipeline call.")] = 1000,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store the results in ClickHouse.")] = False,
) -> None:
    """Replay event files through the monitoring pipeline into ClickHouse (and --out files).

    Reference profiles come from --reference and from the config file's models; the
    config's slices, SLOs, tasks and drift thresholds apply.
    """
    from contextlib import ExitStack

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from streamwatch.alerts.engine import Alerting
    from streamwatch.pipeline.from_settings import configured_profiles, load_profiles, pipeline_from_settings
    from streamwatch.replay.run import ClickHouseSink, ExportSink, check_files
    from streamwatch.replay.run import replay as run_replay
    from streamwatch.runtime.threads import single_blas_thread

    single_blas_thread()

    settings = settings_from(config)
    check_files(files)  # before any work: a typo in the last file should not cost a long run
    profiles = configured_profiles(settings) | load_profiles(reference or [])
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting(
        settings.rules, {}, settings.alerting, profiles, settings.models, pipeline.window_ms
    )  # no channels: a replay notifies nobody
    total = sum(path.stat().st_size for path in files)
    errors = Console(stderr=True)
    with ExitStack() as stack:
        sinks: list[ClickHouseSink | ExportSink] = []
        if not no_store:
            sinks.append(ClickHouseSink.connect(settings))
        if out is not None:
            try:
                sinks.append(stack.enter_context(ExportSink(out)))
            except OSError as exc:
                raise StreamwatchError(f"--out {out}: cannot be written ({exc.strerror})") from None
        progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=errors,
            disable=not (total > 1_000_000 or errors.is_terminal),
        )
        with progress:
            task = progress.add_task("replay", total=total)
            summary = run_replay(
                files, profiles, pipeline, sinks, batch_size, lambda size: progress.advance(task, size), alerting
            )
    table = Table(title=f"replayed {len(files)} file{'s' if len(files) != 1 else ''}")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("events", str(summary.events))
    table.add_row("dead letters", str(summary.dead_letters))
    table.add_row("late events", str(summary.late_events))
    for reason, n in sorted(summary.screened.items()):
        table.add_row(f"screened: {reason.replace('_', ' ')}", str(n))
    table.add_row("labels matched", f"{summary.labels_matched} of {summary.labels_received}")
    table.add_row("metric rows", str(summary.metric_rows))
    for kind, count in sorted(summary.findings.items()):
        table.add_row(f"findings: {kind}", str(count))
    if not summary.findings:
        table.add_row("findings", "0")
    table.add_row("model versions", ", ".join(f"{m} {v}" for m, v in sorted(summary.models)) or "none")
    alerts = ", ".join(f"{n} {status}" for status, n in sorted(summary.alerts.items())) or "0"
    table.add_row("alert transitions", alerts)
    table.add_row("retrain requests", str(summary.retrain))
    Console().print(table)
    stored = "not stored (--no-store)" if no_store else "stored in ClickHouse"
    typer.echo(f"results {stored}" + (f"; export written to {out}" if out is not None else ""))


@app.command()
def report(
    model: Annotated[str, typer.Option("--model", "-m", help="The model to report on.")],
    since: Annotated[str, typer.Option(help="A duration back from now (24h, 7d) or an RFC 3339 time.")] = "24h",
    out: Annotated[Path, typer.Option(metavar="FILE", help="Where to write the HTML page.")] = Path("report.html"),
    config: ConfigOption = None,
) -> None:
    """Write one model's monitoring as a self-contained HTML page (no script, works offline), from ClickHouse."""

    from streamwatch.adapters.clickhouse import StorageError, connect
    from streamwatch.config.durations import parse_duration
    from streamwatch.report.html import render_report, report_data

    now = now_ms()
    try:
        since_ms = now - int(parse_duration(since).total_seconds() * 1000)
    except ValueError:
        try:
            since_ms = to_ms(parse_rfc3339(since))
        except ValueError:
            raise StreamwatchError(f"--since {since!r}: a duration such as 24h or an RFC 3339 time") from None
    settings = settings_from(config)
    try:
        store = connect(settings.clickhouse)
        data = report_data(store, model, since_ms, now)
    except StorageError as exc:
        raise StreamwatchError(f"ClickHouse: {exc}") from None
    if not data.series and not data.alerts:
        raise StreamwatchError(f"--model {model!r}: no results since {since} in {settings.clickhouse.dsn}")
    try:
        out.write_text(render_report(data), encoding="utf-8")
    except OSError as exc:
        raise StreamwatchError(f"--out {out}: cannot be written ({exc.strerror})") from None
    typer.echo(f"wrote {out}: {len(data.series)} series, {len(data.alerts)} alert transitions")
