"""The Faust frame: secured like the other clients, and its credentials never printed."""

from __future__ import annotations

from pathlib import Path

import faust

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
