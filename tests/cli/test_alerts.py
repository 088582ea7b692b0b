"""`streamwatch alerts`, `silence` and `notify test`, as processes, against the broker and a real receiver."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamwatch.adapters.kafka import KafkaTransport, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import load_settings
from tests.cli.test_main import run
from tests.notify.test_dispatcher import alert
from tests.receivers import RecordingReceiver

_n = itertools.count()


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


def config(tmp_path: Path, broker: LocalKafka, receiver: RecordingReceiver) -> Path:
    n = next(_n)
    path = tmp_path / "streamwatch.yaml"
    path.write_text(
        f"""
kafka: {{bootstrap_servers: "{broker.bootstrap_servers}"}}
topics: {{alerts: cli{n}.alerts, silences: cli{n}.silences}}
clickhouse: {{dsn: "http://127.0.0.1:9"}}   # no server: the CLI reads the alerts topic
channels:
  - {{name: hook, type: webhook, url: "{receiver.url}/hook/SECRETPATH", signing_secret: "whsec-cli"}}
"""
    )
    settings = load_settings(path)
    create_topics(settings.kafka, [settings.topics.alerts, settings.topics.silences], partitions=1)
    return path


def test_silences_are_added_listed_and_expired(tmp_path: Path, broker: LocalKafka, receiver: RecordingReceiver) -> None:
    path = config(tmp_path, broker, receiver)
    added = run("silence", "add", "model=credit", 'feature=~"inc.*"', "-d", "2h", "-m", "known shift", "-c", str(path))
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    listed = run("silence", "list", "-c", str(path))
    assert silence_id in listed.stdout and "active" in listed.stdout and "known shift" in listed.stdout
    expired = run("silence", "expire", silence_id[:6], "-c", str(path))
    assert expired.returncode == 0 and "expired" in expired.stdout
    assert silence_id not in run("silence", "list", "-c", str(path)).stdout
    assert silence_id in run("silence", "list", "--all", "-c", str(path)).stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("silence", "add", "model"), "streamwatch: error: matcher: 'model': a matcher is label=value"),
        (("silence", "add", "model=~("), "not a regular expression"),
        (("silence", "add", "model=x", "-d", "soon"), "--duration 'soon': must be a positive duration"),
        (("silence", "expire", "nope"), "silence 'nope': no silence match"),
        (("notify", "test", "nowhere"), "channel 'nowhere' is not configured (channels: hook)"),
        (("alerts", "show", "ffff"), "fingerprint 'ffff': no alert match"),
    ],
)
def test_bad_arguments_are_one_line(
    tmp_path: Path, broker: LocalKafka, receiver: RecordingReceiver, args: tuple[str, ...], words: str
) -> None:
    result = run(*args, "-c", str(config(tmp_path, broker, receiver)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert words in result.stderr.strip().splitlines()[-1]


def test_notify_test_sends_a_sample_and_a_failure_is_one_line_without_the_secret(
    tmp_path: Path, broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    path = config(tmp_path, broker, receiver)
    ok = run("notify", "test", "hook", "-c", str(path))
    assert ok.returncode == 0 and "accepted" in ok.stdout
    [(_, where, _, body)] = receiver.requests
    assert where == "/hook/SECRETPATH" and orjson.loads(body)["alerts"][0]["rule"] == "notify-test"
    receiver.fail_next(1, status=403)
    refused = run("notify", "test", "hook", "-c", str(path))
    assert refused.returncode == 2 and "answered 403" in refused.stderr and "SECRETPATH" not in refused.stderr


def test_alerts_list_and_show_read_the_alerts_topic_when_clickhouse_is_unavailable(
    tmp_path: Path, broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    path = config(tmp_path, broker, receiver)
    settings = load_settings(path)
    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None)
    for event in (alert("aaa111", "firing"), alert("bbb222", "firing"), alert("bbb222", "resolved")):
        transport.send(settings.topics.alerts, event.model_dump_json().encode(), event.fingerprint.encode())
    assert transport.close(10.0) == 0
    listed = run("alerts", "list", "-c", str(path))
    assert listed.returncode == 0, listed.stderr
    assert "aaa111" in listed.stdout and "bbb222" not in listed.stdout  # resolved: listed with --all only
    assert "bbb222" in run("alerts", "list", "--all", "-c", str(path)).stdout
    assert "alerts topic" in listed.stderr
    shown = run("alerts", "show", "bbb", "-c", str(path))
    assert shown.returncode == 0 and '"status": "resolved"' in shown.stdout
    assert shown.stdout.count("firing") >= 1  # the history lists the firing transition too


@pytest.mark.parametrize(
    ("yaml", "words"),
    [
        (
            "rules:\n  - {name: auc, kind: performance, when: {op: '<'}}\n",
            "invalid setting rules['auc'].when: needs `metric` or `finding`",
        ),
        (
            "rules:\n  - {name: d, kind: drift, when: {finding: drift, threshold: 1}}\n",
            "invalid setting rules['d'].when: a `finding` condition takes no threshold",
        ),
        (
            "rules:\n  - {name: g, kind: fairness, when: {metric: fpr, parity: true}}\n",
            "invalid setting rules['g'].when: `parity` needs a threshold",
        ),
        ("rules:\n  - {name: f, kind: drift, when: {finding: drift}, for: soon}\n", "invalid setting rules['f']"),
        ("alerting: {group_wait: soon}\n", "invalid setting alerting.group_wait: must be a duration"),
    ],
)
def test_a_bad_rule_or_alerting_setting_is_one_line_naming_it(tmp_path: Path, yaml: str, words: str) -> None:
    path = tmp_path / "streamwatch.yaml"
    path.write_text(yaml)
    result = run("config", "check", "-c", str(path))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and words in result.stderr, result.stderr
