"""A producer in another language: the real kcat binary (librdkafka's CLI) publishes our contract.

The command is taken from the documentation (docs/guide/contract.md), so it cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streamwatch import ContractError, Producer, parse_event
from streamwatch.adapters.kafka import read_topics
from streamwatch.config.settings import Settings
from streamwatch.contract.events import LabelEvent

README = Path(__file__).parent.parent.parent / "docs" / "guide" / "contract.md"
# In CI `make test` installs kcat, so there the test must run; elsewhere it may skip.
pytestmark = pytest.mark.skipif(
    shutil.which("kcat") is None and not os.environ.get("CI"), reason="kcat is not installed (apt-get install kcat)"
)


def readme_kcat_command() -> str:
    match = re.search(r"```sh\n(echo '\{.*?\n  \| kcat -P [^\n]*)\n```", README.read_text(), re.S)
    assert match, "the contract guide must show publishing an event with kcat"
    return match.group(1)


def kcat(command: str, settings: Settings, topic: str) -> None:
    command = command.replace("127.0.0.1:9092", settings.kafka.bootstrap_servers)
    command = command.replace("streamwatch.labels", topic)
    subprocess.run(["bash", "-c", command], check=True, timeout=30, capture_output=True)


def test_the_readme_kcat_label_is_accepted_and_lands_beside_its_prediction(settings: Settings) -> None:
    command = readme_kcat_command()
    request_id = re.search(r'"request_id":"([^"]+)"', command).group(1)  # type: ignore[union-attr]
    with Producer(settings=settings, model="credit-risk", model_version="3.1.0", strict=True) as monitor:
        monitor.log_prediction(request_id=request_id, prediction=1, score=0.9, latency_ms=3)
    kcat(command, settings, settings.topics.labels)

    messages = read_topics(settings.kafka, [settings.topics.predictions, settings.topics.labels], expect=2)
    by_topic = {m.topic: m for m in messages}
    label = parse_event(by_topic[settings.topics.labels].value)
    assert isinstance(label, LabelEvent) and label.request_id == request_id
    # kcat with murmur2_random and the SDK pick the same partition for the same request id.
    assert by_topic[settings.topics.labels].partition == by_topic[settings.topics.predictions].partition


def test_a_malformed_kcat_event_is_rejected_with_the_field_named(settings: Settings) -> None:
    bad = (
        'echo \'{"type":"label","event_id":"e","request_id":"r","timestamp":"2026-11-23T10:00:00",'
        '"model":"m","label":1}\' | kcat -P -b 127.0.0.1:9092 -t streamwatch.labels'
    )
    kcat(bad, settings, settings.topics.labels)
    [message] = read_topics(settings.kafka, [settings.topics.labels], expect=1)
    with pytest.raises(ContractError, match="^label event: timestamp: must carry a UTC offset"):
        parse_event(message.value)
