"""The ``streamwatch`` root command, its command groups and the options they share.

Commands stay thin: they parse arguments, call the library and print. Every
user error (a bad argument, setting or event) ends as one line on stderr and
exit status 2, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamwatch import __version__
from streamwatch.config.settings import Settings, load_settings

__all__ = [
    "ConfigOption",
    "alerts_app",
    "app",
    "config_app",
    "dashboards_app",
    "notify_app",
    "settings_from",
    "silence_app",
    "wide_console",
]

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


def settings_from(config: Path | None) -> Settings:
    """The settings, from the environment and ``config`` (a YAML file), as every command reads them."""
    return load_settings(config)


def wide_console() -> Console:
    """A console for tables: the terminal's width, or 240 columns when piped."""
    # Piped output is not wrapped at 80 columns: ids and reasons must stay whole for grep and scripts.
    console = Console()
    return console if console.is_terminal else Console(width=240)
