"""The Kafka adapter: settings become librdkafka configuration that librdkafka accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streamwatch.adapters.kafka import KafkaTransport, client_config, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import load_settings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "client.key", directory / "client.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=streamwatch-test",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def transport(**kafka: object) -> KafkaTransport:
    settings = load_settings(kafka=kafka)
    return KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *_: None, on_error=lambda _: None)


def test_sasl_ssl_with_api_keys_passes_through(certificate: tuple[Path, Path]) -> None:
    _, cert = certificate
    kafka = load_settings(
        kafka={
            "bootstrap_servers": "broker.example:9092",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "API-KEY",
            "sasl_password": "API-SECRET",
            "ssl_ca_location": str(cert),
        }
    ).kafka
    conf = client_config(kafka)
    assert {
        k: conf[k] for k in ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location")
    } == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "API-KEY",
        "sasl.password": "API-SECRET",
        "ssl.ca.location": str(cert),
    }
    # librdkafka itself accepts the configuration (it checks names, values and the CA file).
    transport(**kafka.model_dump(mode="python") | {"sasl_password": "API-SECRET"}).close(0)


def test_mutual_tls_passes_through(certificate: tuple[Path, Path]) -> None:
    key, cert = certificate
    transport(
        bootstrap_servers="broker.example:9093",
        security_protocol="SSL",
        ssl_ca_location=str(cert),
        ssl_certificate_location=str(cert),
        ssl_key_location=str(key),
    ).close(0)


def test_librdkafka_rejects_a_missing_ca_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="ssl.ca.location"):
        transport(security_protocol="SSL", ssl_ca_location=str(tmp_path / "missing.pem"))


def test_extra_librdkafka_properties_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMWATCH_KAFKA__LIBRDKAFKA", '{"socket.timeout.ms": "4321", "client.rack": "eu-1a"}')
    conf = client_config(load_settings().kafka)
    assert conf["socket.timeout.ms"] == "4321" and conf["client.rack"] == "eu-1a"
    assert "4321" not in repr(load_settings())  # treated as secrets


def test_create_topics_is_idempotent(broker: LocalKafka) -> None:
    kafka = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}).kafka
    assert create_topics(kafka, ["idem.a", "idem.b"], partitions=2) == ["idem.a", "idem.b"]
    assert create_topics(kafka, ["idem.a", "idem.b", "idem.c"], partitions=2) == ["idem.c"]
