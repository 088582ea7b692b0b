"""The documentation's example events and configs are what streamwatch accepts, so the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamwatch import parse_event

DOCS = Path(__file__).parent.parent / "docs"
CONTRACT = (DOCS / "guide" / "contract.md").read_text()
BLOCKS = [b for b in re.findall(r"```json\n(.*?)```", CONTRACT, re.S) if '"type"' in b]


def test_every_event_type_has_an_example() -> None:
    types = [re.search(r'"type": "(\w+)"', block).group(1) for block in BLOCKS]  # type: ignore[union-attr]
    assert sorted(types) == ["alert", "feature", "label", "prediction", "retrain"]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: re.search(r'"type": "(\w+)"', b).group(1))  # type: ignore[union-attr]
def test_readme_example_is_valid(block: str) -> None:
    parse_event(block.encode(), any_type=True)


def test_the_yaml_config_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamwatch.config.settings import load_settings

    [block] = re.findall(r"```yaml\n(.*?)```", (DOCS / "guide" / "configuration.md").read_text(), re.S)
    [alerting] = re.findall(r"```yaml\n(.*?)```", (DOCS / "guide" / "alerts.md").read_text(), re.S)
    for name in ("SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "WEBHOOK_SECRET", "CLICKHOUSE_PASSWORD", "HOSTNAME"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/value")  # checked as a URL
    path = tmp_path / "streamwatch.yaml"
    path.write_text(alerting)
    chosen = load_settings(path)
    assert chosen.rules[0].windows_needed(60_000) == 10 and chosen.alerting.retrain.min_data.days == 7
    path.write_text(block)
    settings = load_settings(path)
    assert settings.clickhouse.dsn == "http://clickhouse:8123" and settings.worker.instance_id == "value-of-hostname"
    assert settings.models[0].segments and settings.rules[0].channels == ["ml-oncall"]
