"""``streamwatch dashboards push``: the datasource and every dashboard into an existing Grafana.

The only module that imports ``grafana_client``. Idempotent: the folder and
the datasource are created when missing and updated otherwise (by uid), and
dashboards are saved with ``overwrite``, so pushing twice changes nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from streamwatch.config.settings import ClickHouseSettings
from streamwatch.dashboards.catalog import PLUGIN, render_dashboards
from streamwatch.errors import StreamwatchError

__all__ = ["DATASOURCE_UID", "FOLDER_UID", "datasource_config", "push_dashboards"]

DATASOURCE_UID = "streamwatch-clickhouse"
FOLDER_UID = "streamwatch"


def datasource_config(clickhouse: ClickHouseSettings, url: str) -> dict[str, Any]:
    """The ClickHouse plugin's datasource for the settings' database at ``url`` (the password travels as a secret).

    >>> from streamwatch.config.settings import ClickHouseSettings
    >>> ds = datasource_config(ClickHouseSettings(), "https://ch.example.com")
    >>> ds["jsonData"]["host"], ds["jsonData"]["port"], ds["jsonData"]["secure"]
    ('ch.example.com', 8443, True)
    """
    parts = urlsplit(url)
    secure_transport = parts.scheme == "https"
    host, port = parts.hostname or "localhost", parts.port or (8443 if secure_transport else 8123)
    secure = {"password": clickhouse.password.get_secret_value()} if clickhouse.password else {}
    return {
        "uid": DATASOURCE_UID,
        "name": "streamwatch ClickHouse",
        "type": PLUGIN,
        "access": "proxy",
        "jsonData": {
            "host": host,
            "port": port,
            "protocol": "http",
            "username": clickhouse.username,
            "defaultDatabase": clickhouse.database,
            "secure": secure_transport or clickhouse.secure,
        },
        "secureJsonData": secure,
    }


def push_dashboards(
    url: str,
    token: str | tuple[str, str] | None,
    datasource: dict[str, Any],
    folder: str = "streamwatch",
    timeout: float = 10.0,
) -> list[str]:
    """Create or update the folder, the datasource and the dashboards; return what was pushed."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        return _push(api, datasource, folder)
    except GrafanaException as exc:
        raise StreamwatchError(f"Grafana at {url}: {exc.status_code} {exc.message}") from None
    except OSError as exc:  # connection refused, DNS and the like (niquests raises OSError subclasses)
        raise StreamwatchError(f"Grafana at {url}: unreachable ({type(exc).__name__})") from None


def _push(api: GrafanaApi, datasource: dict[str, Any], folder: str) -> list[str]:
    pushed = []
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(folder, uid=FOLDER_UID)
        pushed.append(f"folder {folder}")
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, datasource)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.datasource.create_datasource(datasource)
    pushed.append(f"datasource {datasource['name']}")
    for name, text in render_dashboards().items():
        board = json.loads(text)
        for variable in board["templating"]["list"]:
            if variable["name"] == "database":
                variable["query"] = datasource["jsonData"]["defaultDatabase"]
        api.dashboard.update_dashboard(
            {"dashboard": board, "folderUid": FOLDER_UID, "overwrite": True, "message": "streamwatch dashboards push"}
        )
        pushed.append(f"dashboard {board['title']} ({name})")
    return pushed
