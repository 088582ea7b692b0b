"""The Kafka adapter: settings become librdkafka configuration that librdkafka accepts."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from streamwatch.adapters.kafka import (
    KafkaTransport,
    LibrdkafkaLogFilter,
    client_config,
    create_topics,
    librdkafka_logger,
)
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


def test_librdkafka_log_lines_are_rate_limited_by_kind(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("test.librdkafka")
    logger.addFilter(LibrdkafkaLogFilter(10.0, clock=lambda: now[0]))
    refused = "[thrd:{0}/bootstrap]: {0}/bootstrap: Connect to ipv4#{0} failed: Connection refused"
    refused += " (after {1}ms in state CONNECT)"
    caplog.set_level(logging.DEBUG, logger="test.librdkafka")
    for i in range(50):  # three brokers down, each attempt a line, as librdkafka logs them
        broker = f"10.0.0.{i % 3}:9092"
        logger.log(logging.ERROR, "%s [%s] %s", "FAIL", f"streamwatch#producer-{i % 2}", refused.format(broker, i))
    logger.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", "[thrd:b:1/1]: b:1/1: SSL handshake failed")
    logger.log(logging.DEBUG, "%s [%s] %s", "BROKER", "c", "debug lines all pass")
    logger.log(logging.DEBUG, "%s [%s] %s", "BROKER", "c", "debug lines all pass")
    now[0] = 10.0
    logger.log(logging.ERROR, "%s [%s] %s", "FAIL", "p", refused.format("10.0.0.1:9092", 0))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "FAIL [streamwatch#producer-0] " + refused.format("10.0.0.0:9092", 0),
        "FAIL [c] [thrd:b:1/1]: b:1/1: SSL handshake failed",
        "BROKER [c] debug lines all pass",
        "BROKER [c] debug lines all pass",
        "FAIL [p] " + refused.format("10.0.0.1:9092", 0) + " (49 similar messages suppressed)",
    ]


def test_every_client_logs_through_the_rate_limited_logger() -> None:
    conf = client_config(load_settings().kafka)
    assert conf["logger"] is librdkafka_logger
    assert any(isinstance(f, LibrdkafkaLogFilter) for f in librdkafka_logger.filters)
    assert conf["log.connection.close"] is False


def test_a_worker_consumer_with_no_broker_writes_a_line_not_dozens() -> None:
    # Before librdkafka's log went through the rate-limited logger: ~95 lines in 5 s.
    script = """
import time
from streamwatch.adapters.kafka import BatchConsumer
from streamwatch.config.settings import load_settings
kafka = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}).kafka
consumer = BatchConsumer(kafka, "g", ["t"], lambda partitions: {}, lambda partitions: None)
started = time.monotonic()
while time.monotonic() - started < 3:
    consumer.consume(100, 0.2)
consumer.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert 1 <= sum("Connection refused" in line for line in lines) <= 2, lines
