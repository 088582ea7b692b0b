"""The ``streamwatch`` command line.

Commands stay thin: they parse arguments, call the library and print. Every
user error (a bad argument, setting or event) ends as one line on stderr and
exit status 2, never as a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamwatch import __version__
from streamwatch.config.settings import Settings, load_settings
from streamwatch.errors import ContractError, StreamwatchError

__all__ = ["app", "main"]

app = typer.Typer(
    name="streamwatch",
    help="Real-time monitoring of ML models in production: drift, quality, performance, fairness and SLOs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Inspect the settings and the YAML config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")
alerts_app = typer.Typer(help="Alerts: what fires, and each alert's history.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
silence_app = typer.Typer(help="Silences: mute notifications of matching alerts for a while.", no_args_is_help=True)
app.add_typer(silence_app, name="silence")
notify_app = typer.Typer(help="Notification channels.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
dashboards_app = typer.Typer(help="The Grafana dashboards (kept as code in dashboards/).", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML file with models, rules and channels.", envvar="STREAMWATCH_CONFIG_FILE"),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"streamwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """streamwatch: event-driven monitoring for ML models in production."""


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _wide() -> Console:
    # Piped output is not wrapped at 80 columns: ids and reasons must stay whole for grep and scripts.
    console = Console()
    return console if console.is_terminal else Console(width=240)


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
    from streamwatch.demo.view import live_view, summary_table

    console = Console()
    if live and console.is_terminal:
        with Live(console=console, refresh_per_second=4) as screen:
            summary = run_demo(minutes, per_minute, speed, out, view=lambda state: screen.update(live_view(state)))
    else:
        import time

        last = [0.0]

        def plain(state: dict) -> None:  # type: ignore[type-arg]
            if time.monotonic() - last[0] >= 10:
                last[0] = time.monotonic()
                typer.echo(
                    f"{state['phase']}: {state['events']:,} events published, "
                    f"{len(state['receiver'].notifications)} notifications received"
                )

        summary = run_demo(minutes, per_minute, speed, out, view=plain)
    console.print(summary_table(summary))
    console.print(
        f"notifications received and verified: {len(summary.notifications)} "
        f"(rejected: {summary.rejected_notifications})"
    )
    console.print(f"retrain requests consumed by examples/retrain_consumer.py: {len(summary.retrain_requests)}")
    if summary.false_alarms:
        console.print("also fired, as consequences of the incidents unless marked: " + "; ".join(summary.false_alarms))
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
    import time

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
    settings = _settings(config)
    round_ = 0
    while True:
        scenario = DemoScenario(minutes, per_minute, start_ms=int(time.time() * 1000), seed=7 + round_)
        sent = publish_scenario(settings, scenario, speed)
        typer.echo(f"scenario {round_ + 1}: {sent:,} events published")
        round_ += 1
        if not loop:
            return


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Directory to write the JSON Schema files to.")] = Path("schemas"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the files differ instead of writing.")] = False,
) -> None:
    """Write the event contract's JSON Schema files (generated from the pydantic models)."""
    from streamwatch.cli.schemas import stale_schemas, write_schemas

    if check:
        stale = stale_schemas(out)
        if stale:
            raise StreamwatchError(f"schemas in {out} are stale: {', '.join(stale)}; run `streamwatch schemas`")
        typer.echo(f"schemas in {out} are up to date")
        return
    for path in write_schemas(out):
        typer.echo(f"wrote {path}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files of events, or - for stdin.")],
) -> None:
    """Check events (one JSON object per line) against the contract."""
    from streamwatch.contract.events import parse_event

    bad = total = 0
    for path in files:
        stream = sys.stdin.buffer if str(path) == "-" else _open(path)
        with stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                total += 1
                try:
                    parse_event(line.rstrip(b"\r\n"), any_type=True)
                except ContractError as exc:
                    bad += 1
                    typer.echo(f"{path}:{number}: {exc}", err=True)
    typer.echo(f"{total - bad} valid, {bad} invalid")
    if bad:
        raise typer.Exit(1)


def _open(path: Path):  # type: ignore[no-untyped-def]
    try:
        return path.open("rb")
    except OSError as exc:
        raise StreamwatchError(f"{path}: cannot be read ({exc.strerror})") from None


@app.command()
def profile(
    data: Annotated[Path, typer.Argument(help="Training data: a .csv or .parquet file.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version the data trained.")],
    out: Annotated[Path, typer.Option(help="Where to write the profile (JSON).")],
    label_column: Annotated[str | None, typer.Option(help="Ground-truth column.")] = None,
    score_column: Annotated[str | None, typer.Option(help="Score (probability) column.")] = None,
    prediction_column: Annotated[str | None, typer.Option(help="Prediction column.")] = None,
    segments: Annotated[str, typer.Option(help="Comma-separated slice columns, e.g. gender,region.")] = "",
    positive_label: Annotated[str, typer.Option(help="Label value counted as positive.")] = "1",
    max_categories: Annotated[int, typer.Option(min=1, help="Categories kept per categorical feature.")] = 200,
    data_uri: Annotated[str | None, typer.Option(help="Where the data lives, for lineage (default: DATA).")] = None,
    model_artifact: Annotated[str | None, typer.Option(help="Model artifact URI, for lineage.")] = None,
    git_sha: Annotated[str | None, typer.Option(help="Git commit of the training code, for lineage.")] = None,
) -> None:
    """Build a reference profile of a training set: bins, frequencies, distributions, slices and lineage."""
    from datetime import UTC, datetime

    from streamwatch.adapters.datasets import read_columns, sha256_of
    from streamwatch.profiles.model import Lineage, build_profile

    columns, rows = read_columns(data)
    try:
        lineage = Lineage(
            model=model,
            model_version=version,
            data_uri=data_uri or str(data),
            rows=rows,
            content_sha256=sha256_of(data),
            model_artifact_uri=model_artifact,
            git_sha=git_sha,
            created_at=datetime.now(UTC),
            streamwatch_version=__version__,
        )
        built = build_profile(
            columns,
            lineage=lineage,
            label_column=label_column,
            score_column=score_column,
            prediction_column=prediction_column,
            segments=[s for s in segments.split(",") if s],
            positive_label=positive_label,
            max_categories=max_categories,
        )
    except KeyError as exc:
        raise StreamwatchError(f"{data}: {exc.args[0]}") from None
    except ValueError as exc:
        raise StreamwatchError(f"{data}: {str(exc).splitlines()[0]}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(built.model_dump_json(indent=2) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}: {len(built.features)} features, {rows} rows, {len(built.slices)} slices")


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

    settings = _settings(config)
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
def init(config: ConfigOption = None) -> None:
    """Create the Kafka topics (with the configured partition counts) and apply the ClickHouse schema."""
    from streamwatch.runtime.wiring import init_deployment

    settings = _settings(config)
    created, applied = init_deployment(settings)
    typer.echo(f"topics created: {', '.join(created) or 'none (all exist)'}")
    typer.echo(f"ClickHouse migrations applied: {', '.join(applied) or 'none (up to date)'}")


@app.command()
def worker(
    config: ConfigOption = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option("--reference", "-r", metavar="REF.json", help="A reference profile; repeat for more."),
    ] = None,
    web_port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port of /metrics and /health.")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
    log_format: Annotated[
        str, typer.Option(help="text, or json: one object per line with model, version, window.")
    ] = "text",
) -> None:
    """Run a stream worker: consume the event topics, monitor, and store results in ClickHouse.

    Start as many as the input topics have partitions; they share the work as one consumer group.
    """
    import os
    import platform

    from streamwatch.adapters.clickhouse import connect
    from streamwatch.pipeline.from_settings import configured_profiles, load_profiles, pipeline_from_settings
    from streamwatch.runtime.faust_app import broker_credentials, build_app, run_worker
    from streamwatch.runtime.logs import configure as configure_logs
    from streamwatch.runtime.wiring import build_runtime, faust_broker, input_partitions

    settings = _settings(config)
    profiles = configured_profiles(settings) | load_profiles(reference or [])
    pipeline = pipeline_from_settings(settings, profiles)
    partitions = input_partitions(settings)
    if log_format not in ("text", "json"):
        raise StreamwatchError(f"--log-format: must be text or json, not {log_format!r}")
    configure_logs(loglevel, json=log_format == "json")

    def runtime():  # type: ignore[no-untyped-def]
        store = connect(settings.clickhouse)
        store.migrate(settings.clickhouse.raw_ttl_days)
        for profile in profiles.values():
            store.insert_profile(profile)
        return build_runtime(settings, pipeline, store, partitions)

    app_ = build_app(
        runtime,
        # Faust's own consumer group carries no events (see worker.py). One per process: a process
        # that replaces a crashed one must not wait for the dead member to leave a shared group.
        app_id=f"{settings.worker.group}-app-{platform.node()}-{os.getpid()}",
        broker=faust_broker(settings),
        web_host=settings.worker.web_host,
        web_port=settings.worker.web_port if web_port is None else web_port,
        credentials=broker_credentials(settings.kafka),
    )
    run_worker(app_, loglevel)


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Load the settings (environment and YAML file) and summarise them. Secrets stay hidden."""
    settings = _settings(config)
    console = Console()
    console.print(f"config file: {settings.config_file or '(none)'}")
    console.print(f"kafka: {settings.kafka.bootstrap_servers} ({settings.kafka.security_protocol})")
    console.print(f"topics: {settings.topics.predictions}, {settings.topics.features}, {settings.topics.labels}")
    from streamwatch.alerts.defaults import with_defaults

    rules = with_defaults(settings.rules, settings.alerting.default_rules)
    built_in = len(rules) - len(settings.rules)
    console.print(
        f"models: {len(settings.models)}, rules: {len(settings.rules)} (+{built_in} built-in), "
        f"channels: {len(settings.channels)}"
    )
    console.print("[green]config ok[/green]")


@app.command()
def report(
    model: Annotated[str, typer.Option("--model", "-m", help="The model to report on.")],
    since: Annotated[str, typer.Option(help="A duration back from now (24h, 7d) or an RFC 3339 time.")] = "24h",
    out: Annotated[Path, typer.Option(metavar="FILE", help="Where to write the HTML page.")] = Path("report.html"),
    config: ConfigOption = None,
) -> None:
    """Write one model's monitoring as a self-contained HTML page (no script, works offline), from ClickHouse."""
    import time
    from datetime import datetime

    from streamwatch.adapters.clickhouse import StorageError, connect
    from streamwatch.config.durations import parse_duration
    from streamwatch.report.html import render_report, report_data

    now = int(time.time() * 1000)
    try:
        since_ms = now - int(parse_duration(since).total_seconds() * 1000)
    except ValueError:
        try:
            since_ms = int(datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise StreamwatchError(f"--since {since!r}: a duration such as 24h or an RFC 3339 time") from None
    settings = _settings(config)
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


@alerts_app.command("list")
def alerts_list(
    config: ConfigOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Resolved alerts too.")] = False,
) -> None:
    """Alerts that are pending or firing now (their latest transition), newest first."""
    from streamwatch.cli.alerts import alert_history

    histories, source = alert_history(_settings(config))
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
    _wide().print(table)
    typer.echo(f"read from {source}", err=True)


@alerts_app.command("show")
def alerts_show(
    fingerprint: Annotated[str, typer.Argument(help="An alert's fingerprint, or its first characters.")],
    config: ConfigOption = None,
) -> None:
    """One alert: its latest state as JSON, then every transition."""
    from streamwatch.cli.alerts import alert_history, find_alert

    histories, source = alert_history(_settings(config))
    history = find_alert(histories, fingerprint)
    console = _wide()
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

    from streamwatch.cli.alerts import add_silence
    from streamwatch.config.durations import parse_duration

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise StreamwatchError(f"--duration {duration!r}: {exc}") from None
    try:
        silence = add_silence(
            _settings(config), matchers, int(length.total_seconds() * 1000), author or getpass.getuser(), comment
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

    from streamwatch.cli.alerts import list_silences

    now = int(time.time() * 1000)
    silences = [s for s in list_silences(_settings(config)) if all_ or s.active(now) or s.starts_at_ms > now]
    table = Table(title=f"{len(silences)} silence{'s' if len(silences) != 1 else ''}")
    for column in ("id", "state", "matchers", "ends", "by", "comment"):
        table.add_column(column)
    for s in silences:
        state = "active" if s.active(now) else ("pending" if s.starts_at_ms > now else "expired")
        ends = time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.ends_at_ms / 1000))
        table.add_row(s.silence_id, state, " ".join(s.matchers), ends, s.created_by, s.comment)
    _wide().print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id, or its first characters.")],
    config: ConfigOption = None,
) -> None:
    """End a silence now."""
    from streamwatch.cli.alerts import expire_silence

    silence = expire_silence(_settings(config), silence_id)
    typer.echo(f"silence {silence.silence_id} expired")


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Where the dashboard JSON files go.")] = Path("dashboards"),
    check: Annotated[bool, typer.Option("--check", help="Only check that the files match the code.")] = False,
) -> None:
    """Write the dashboards' JSON from the code in streamwatch/dashboards.py (or check it is current)."""
    from streamwatch.dashboards.catalog import render_dashboards, stale_dashboards

    if check:
        stale = stale_dashboards(out)
        if stale:
            raise StreamwatchError(
                f"dashboards in {out} are stale: {', '.join(stale)}; run `streamwatch dashboards build`"
            )
        typer.echo(f"dashboards in {out} are up to date")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_dashboards().items():
        (out / name).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out / name}")


@dashboards_app.command("push")
def dashboards_push(
    url: Annotated[str, typer.Option(help="Grafana's base URL, e.g. http://localhost:3000.")],
    token: Annotated[
        str | None, typer.Option(help="A service-account token (or user:password).", envvar="GRAFANA_TOKEN")
    ] = None,
    clickhouse_url: Annotated[
        str | None, typer.Option(help="How Grafana reaches ClickHouse (default: clickhouse.dsn when it is http).")
    ] = None,
    folder: Annotated[str, typer.Option(help="The Grafana folder the dashboards go in.")] = "streamwatch",
    config: ConfigOption = None,
) -> None:
    """Create or update the ClickHouse datasource and every dashboard in an existing Grafana (idempotent)."""
    from streamwatch.adapters.grafana import datasource_config, push_dashboards

    settings = _settings(config)
    target = clickhouse_url or settings.clickhouse.dsn
    if not target.startswith(("http://", "https://")):
        raise StreamwatchError(
            f"--clickhouse-url: Grafana needs a ClickHouse server (clickhouse.dsn is {target}); give its http URL"
        )
    datasource = datasource_config(settings.clickhouse, target)
    credential: str | tuple[str, str] | None = token
    if token and ":" in token:
        user, _, password = token.partition(":")
        credential = (user, password)
    for line in push_dashboards(url, credential, datasource, folder):  # type: ignore[arg-type]
        typer.echo(f"pushed {line}")


@notify_app.command("test")
def notify_test(
    channel: Annotated[str, typer.Argument(help="A channel name from the config file.")],
    config: ConfigOption = None,
) -> None:
    """Send a sample alert to CHANNEL, to check its URL, key and formatting."""
    from streamwatch.cli.alerts import notify_test as send_test

    notification = send_test(_settings(config), channel)
    typer.echo(f"sent a test notification ({notification.notification_id}) to {channel}: accepted")


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="streamwatch")
    except StreamwatchError as exc:
        print(f"streamwatch: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
