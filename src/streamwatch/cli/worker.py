"""``streamwatch init``, ``worker`` and ``config check``: running the stream workers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamwatch.cli.app import (
    ConfigOption,
    app,
    config_app,
    settings_from,
)
from streamwatch.errors import StreamwatchError


@app.command()
def init(config: ConfigOption = None) -> None:
    """Create the Kafka topics (with the configured partition counts) and apply the ClickHouse schema."""
    from streamwatch.runtime.wiring import init_deployment

    settings = settings_from(config)
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
    from streamwatch.runtime.loop import WorkerRuntime
    from streamwatch.runtime.threads import single_blas_thread
    from streamwatch.runtime.wiring import build_runtime, faust_broker, input_partitions

    single_blas_thread()
    settings = settings_from(config)
    profiles = configured_profiles(settings) | load_profiles(reference or [])
    pipeline = pipeline_from_settings(settings, profiles)
    partitions = input_partitions(settings)
    if log_format not in ("text", "json"):
        raise StreamwatchError(f"--log-format: must be text or json, not {log_format!r}")
    configure_logs(loglevel, json=log_format == "json")

    def runtime() -> WorkerRuntime:
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
    settings = settings_from(config)
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
