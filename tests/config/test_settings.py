"""One settings object: code > environment > YAML file > defaults; errors are one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamwatch.config.models import parse_duration
from streamwatch.config.settings import Settings, load_settings
from streamwatch.errors import ConfigError

CONFIG = """
kafka:
  bootstrap_servers: file:9092
  security_protocol: SASL_SSL
  sasl_mechanism: PLAIN
  sasl_username: api-key
  sasl_password: ${KAFKA_SECRET}
models:
  - name: credit-risk
    references: {"3.1.0": profiles/credit-3.1.0.json}
    segments: [gender, [gender, region]]
    slo: {latency_ms: 250, target: 0.999, period: 30d}
rules:
  - name: feature-drift
    kind: drift
    when: {metric: psi, threshold: 0.2}
    for_windows: 3
    channels: [oncall, hooks]
    actions: [retrain]
channels:
  - {name: oncall, type: slack, webhook_url: "${SLACK_URL:-https://hooks.slack.invalid/T0/B0/xyz}"}
  - {name: hooks, type: webhook, url: "https://example.invalid/hook", signing_secret: "${HOOK_SECRET}"}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KAFKA_SECRET", "kafka-pass-123")
    monkeypatch.setenv("HOOK_SECRET", "hook-secret-456")
    path = tmp_path / "streamwatch.yaml"
    path.write_text(CONFIG)
    return path


def test_defaults_need_nothing() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.predictions == "streamwatch.predictions"
    assert settings.topics.deadletter == "streamwatch.deadletter"
    assert settings.models == [] and settings.config_file is None


def test_yaml_file_is_read_and_interpolated(config: Path) -> None:
    settings = load_settings(config)
    assert settings.kafka.bootstrap_servers == "file:9092"
    assert settings.kafka.sasl_password.get_secret_value() == "kafka-pass-123"
    assert settings.channels[0].webhook_url.get_secret_value() == "https://hooks.slack.invalid/T0/B0/xyz"
    assert settings.models[0].slo.period.days == 30
    assert settings.models[0].segments == ["gender", ["gender", "region"]]
    assert settings.rules[0].for_windows == 3


def test_precedence_code_then_environment_then_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMWATCH_CONFIG_FILE", str(config))
    assert load_settings().kafka.bootstrap_servers == "file:9092"
    monkeypatch.setenv("STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    assert load_settings().kafka.bootstrap_servers == "env:9092"
    assert load_settings().kafka.sasl_username == "api-key"  # the rest of the section still comes from the file
    assert load_settings(kafka={"bootstrap_servers": "code:9092"}).kafka.bootstrap_servers == "code:9092"


def test_secrets_never_print(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(config)
    logging.getLogger("test").warning("settings: %s %r", settings, settings)
    for text in (str(settings), repr(settings), settings.model_dump_json(), caplog.text):
        assert "kafka-pass-123" not in text and "hook-secret-456" not in text and "xyz" not in text


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (
            "when: {metric: psi, threshold: 0.2}|when: {metric: psi, threshold: high}",
            "invalid setting rules['feature-drift'].when.threshold: Input should be a valid number",
        ),
        ("kind: drift|kind: drfit", "invalid setting rules['feature-drift'].kind: must be 'drift'"),
        (
            "channels: [oncall, hooks]|channels: [oncall, pager]",
            "invalid setting rules['feature-drift'].channels: unknown channel 'pager'",
        ),
        ("period: 30d|period: a month", "invalid setting models['credit-risk'].slo.period: must be a positive"),
        ("type: slack|type: teams", "invalid setting channels['oncall'].type: unknown value 'teams'"),
        ("sasl_mechanism: PLAIN|sasl_mechanism: KERBEROS", "invalid setting kafka.sasl_mechanism: must be"),
        ("  sasl_username: api-key\n|", "invalid setting kafka.sasl_username: username and password required"),
        ("for_windows: 3|for_windows: 0", "invalid setting rules['feature-drift'].for_windows"),
        ("models:|modles:", "invalid setting modles: unknown field"),
        ("{name: hooks,|{name: oncall,", "invalid setting channels['oncall']: duplicate name"),
        ("${HOOK_SECRET}|${NOT_SET_ANYWHERE}", "channels[1].signing_secret: environment variable NOT_SET_ANYWHERE"),
        ("models:\n|models: [\n", "line"),
    ],
)
def test_bad_config_gives_one_line_naming_the_field(config: Path, mutation: str, message: str) -> None:
    old, new = mutation.split("|")
    assert old in CONFIG
    config.write_text(CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = str(caught.value)
    assert message in text, text
    assert "\n" not in text
    assert "kafka-pass-123" not in text


def test_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMWATCH_PRODUCER__BUFFER_MAX_MESSAGES", "lots")
    with pytest.raises(ConfigError, match=r"producer.buffer_max_messages: .*STREAMWATCH_PRODUCER__BUFFER_MAX_MESSAGES"):
        load_settings()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "nope.yaml")


def test_durations() -> None:
    assert parse_duration("500ms").total_seconds() == 0.5
    assert parse_duration("2w").days == 14
    for bad in ("0s", "5", "5 m", "-1h", 5):
        with pytest.raises(ValueError, match="positive duration"):
            parse_duration(bad)


def test_settings_are_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        Settings().topics = None  # type: ignore[misc,assignment]


def test_raw_events_are_all_stored_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    clickhouse = load_settings().clickhouse
    assert clickhouse.raw_events == "all" and 0 < clickhouse.raw_sample_rate <= 1
    monkeypatch.setenv("STREAMWATCH_CLICKHOUSE__RAW_EVENTS", "sample")
    monkeypatch.setenv("STREAMWATCH_CLICKHOUSE__RAW_SAMPLE_RATE", "0.25")
    chosen = load_settings().clickhouse
    assert (chosen.raw_events, chosen.raw_sample_rate) == ("sample", 0.25)
    assert load_settings(clickhouse={"raw_events": "none"}).clickhouse.raw_events == "none"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"raw_events": "some"}, "clickhouse.raw_events"),
        ({"raw_sample_rate": 0}, "clickhouse.raw_sample_rate"),
        ({"raw_sample_rate": 1.5}, "clickhouse.raw_sample_rate"),
        ({"raw_sample_rate": "often"}, "clickhouse.raw_sample_rate"),
    ],
)
def test_a_bad_raw_events_setting_is_one_line_naming_it(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(clickhouse=section)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("feature", ["{monitor: false}", "{kind: categorical}"])
def test_feature_overrides_the_pipeline_does_not_honour_are_refused_naming_them(feature: str, tmp_path: Path) -> None:
    """Accepted and ignored, `monitor: false` left the feature monitored while the config said otherwise."""
    path = tmp_path / "streamwatch.yaml"
    path.write_text(f"models:\n  - name: m\n    features: {{age: {feature}}}\n")
    with pytest.raises(ConfigError, match=r"models\['m'\]\.features\.age\.(monitor|kind): not supported"):
        load_settings(path)
    path.write_text("models:\n  - name: m\n    features: {age: {monitor: true, thresholds: {psi: 0.3}}}\n")
    assert load_settings(path).models[0].features["age"].thresholds == {"psi": 0.3}
