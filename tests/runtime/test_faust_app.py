"""The Faust frame: secured like the other clients, and its credentials never printed."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from streamwatch.config.settings import load_settings
from streamwatch.runtime.faust_app import broker_credentials, build_app


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(load_settings().kafka) is None


def test_sasl_ssl_reaches_fausts_connection_with_the_secret_kept_out_of_sight(tmp_path: Path) -> None:
    kafka = load_settings(
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "svc-streamwatch",
            "sasl_password": "s3cr3t-pw",
        }
    ).kafka
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc-streamwatch" and credentials.ssl_context is not None
    assert "s3cr3t-pw" not in repr(kafka)
    app = build_app(
        lambda: None,
        app_id="t",
        broker="kafka://127.0.0.1:1",
        web_host="127.0.0.1",
        web_port=6066,
        credentials=credentials,
    )
    assert app.conf.broker_credentials is credentials


def test_the_app_leaves_no_data_directory_where_the_worker_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Faust's default is "<app_id>-data" in the working directory: a new one at every start, since the app id
    # names the process (the image's working directory is its /data volume).
    monkeypatch.chdir(tmp_path)
    app = build_app(
        lambda: None, app_id="sw-app-host-1", broker="kafka://127.0.0.1:1", web_host="127.0.0.1", web_port=6099
    )
    appdir = Path(app.conf.appdir).resolve()  # (asked for, Faust makes the default one)
    assert appdir.parent.is_dir() and not appdir.is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []
