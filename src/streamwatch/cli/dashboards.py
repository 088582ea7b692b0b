"""``streamwatch dashboards build|push``: the Grafana dashboards kept as code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamwatch.cli.app import (
    ConfigOption,
    dashboards_app,
    settings_from,
)
from streamwatch.errors import StreamwatchError


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Where the dashboard JSON files go.")] = Path("dashboards"),
    check: Annotated[bool, typer.Option("--check", help="Only check that the files match the code.")] = False,
) -> None:
    """Write the dashboards' JSON from the code in streamwatch/dashboards/catalog.py (or check it is current)."""
    from streamwatch.dashboards.catalog import render_dashboards, stale_dashboards

    if check:
        stale = stale_dashboards({path.name: path.read_text(encoding="utf-8") for path in out.glob("*.json")})
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

    settings = settings_from(config)
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
    for line in push_dashboards(url, credential, datasource, folder):
        typer.echo(f"pushed {line}")
