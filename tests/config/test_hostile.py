"""Hostile configuration is refused fast, with one line naming the file and line or the field."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from streamwatch.config.durations import MAX_DURATION, parse_duration
from streamwatch.config.settings import MAX_CONFIG_BYTES, MAX_NESTING, MAX_VALUES, load_settings
from streamwatch.errors import ConfigError

ROOT = Path(__file__).parent.parent.parent

# About 300 bytes that PyYAML would expand to 9**8 (43 million) strings.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


def refused(path: Path, text: str | bytes, seconds: float = 1.0) -> str:
    """The one-line error ``load_settings`` gives for this file, checked to come within ``seconds``."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert elapsed < seconds, f"{elapsed:.2f}s: {message}"
    assert "\n" not in message
    return message


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "streamwatch.yaml"


def test_billion_laughs_is_refused_at_once(path: Path) -> None:
    assert len(BILLION_LAUGHS) < 400
    message = refused(path, BILLION_LAUGHS, seconds=0.2)
    assert message == f"config file {path} line 1: YAML anchors (&name) are not allowed in a config file"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("kafka:\n  client_id: *name\n", 2, "YAML aliases (*name) are not allowed"),
        ("kafka: &k {client_id: x}\n", 1, "YAML anchors (&name) are not allowed"),
        ("topics: {partitions: 6}\nkafka:\n  <<: *k\n", 3, "YAML aliases (*name) are not allowed"),
        ("kafka: {client_id: &id x}\n", 1, "YAML anchors (&name) are not allowed"),
    ],
)
def test_anchors_and_aliases_are_refused(path: Path, text: str, line: int, words: str) -> None:
    assert refused(path, text) == f"config file {path} line {line}: {words} in a config file"


def nested(depth: int) -> str:
    """A document whose innermost list is ``depth`` levels deep, counting the top-level mapping."""
    return "kafka: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"


def test_deep_nesting_is_refused(path: Path) -> None:
    message = refused(path, nested(MAX_NESTING + 1))
    assert message == f"config file {path} line 1: nested more than {MAX_NESTING} levels deep"
    # As deep as allowed: the file loads, and validation names the field.
    assert "invalid setting kafka:" in refused(path, nested(MAX_NESTING))
    # A million levels, far past Python's recursion limit, is refused as fast.
    assert "nested more than" in refused(path, "kafka: " + "[" * 1_000_000)


def test_deep_block_nesting_names_its_line(path: Path) -> None:
    text = "".join(f"{'  ' * level}k{level}:\n" for level in range(MAX_NESTING + 5))
    assert (
        refused(path, text) == f"config file {path} line {MAX_NESTING + 1}: nested more than {MAX_NESTING} levels deep"
    )


def test_too_many_values_are_refused(path: Path) -> None:
    message = refused(path, "kafka: [" + "1," * MAX_VALUES + "1]\n", seconds=0.5)
    assert message == f"config file {path} line 1: more than {MAX_VALUES} values"


def test_too_large_a_file_is_refused(path: Path) -> None:
    text = "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1)
    assert refused(path, text) == f"config file {path} line {MAX_CONFIG_BYTES // 10 + 1}: larger than 1 MiB"


def test_a_file_that_is_not_utf8_is_refused(path: Path) -> None:
    assert refused(path, b"kafka:\n  client_id: caf\xe9\n") == f"config file {path} line 2: not UTF-8 text"


@pytest.mark.parametrize(
    ("value", "kind"),
    [("2020-13-45", "timestamp"), ("9" * 5000, "integer"), ("-1" + "_0" * 5000, "integer")],
)
def test_scalars_python_cannot_hold_are_refused_with_their_line(path: Path, value: str, kind: str) -> None:
    message = refused(path, f"topics:\n  partitions: {value}\n")
    assert message == f"config file {path} line 2: invalid {kind} value"


def test_normal_configs_still_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_settings(ROOT / "deploy" / "streamwatch.yaml")
    assert deploy.models[0].slo is not None and deploy.models[0].slo.period == timedelta(days=30)
    # Flow and block style, quoting, comments, env references and a merge key without an alias.
    path.write_text(
        "# streamwatch\n"
        "kafka: {client_id: 'sw', bootstrap_servers: \"${BROKERS:-k:9092}\"}\n"
        "alerting:\n  <<: {repeat_interval: 3650d}\n  group_wait: 0s\n"
        "models:\n  - name: m\n    features: {age: {monitor: true, thresholds: {psi: 0.2}}}\n"
    )
    settings = load_settings(path)
    assert settings.alerting.repeat_interval == MAX_DURATION and settings.kafka.bootstrap_servers == "k:9092"


def test_a_large_legitimate_config_loads_in_linear_time(path: Path) -> None:
    # A ratio in one run, not a time: an absolute bound failed once on a loaded CI machine (1.08 s).
    def load(n: int) -> float:
        features = "".join(f"      f{i}: {{monitor: true, thresholds: {{psi: 0.2}}}}\n" for i in range(n))
        path.write_text(f"models:\n  - name: m\n    features:\n{features}")
        started = time.perf_counter()
        assert len(load_settings(path).models[0].features) == n
        return time.perf_counter() - started

    small, large = min(load(1_000) for _ in range(3)), min(load(8_000) for _ in range(3))
    assert large < 8 * 2 * small + 0.2  # linear is 8x; quadratic would be 64x


# -- numbers that overflow ---------------------------------------------------------------------------


def test_durations_are_bounded() -> None:
    assert parse_duration("3650d") == MAX_DURATION == timedelta(days=3650)
    assert parse_duration("0000000000000000000000000000005m") == timedelta(minutes=5)
    for bad in ("3651d", "522w", "99999999999999d", "9" * 5000 + "ms", timedelta(days=3651)):
        with pytest.raises(ValueError, match=r"^must be at most 3650d \(10 years\)$"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("alerting: {repeat_interval: 99999999999999d}", "alerting.repeat_interval"),
        ("alerting: {group_wait: 99999999999999w}", "alerting.group_wait"),
        ("alerting: {retrain: {cooldown: 9999999999999999999999999h}}", "alerting.retrain.cooldown"),
        ("models: [{name: m, slo: {period: 99999999999999d}}]", "models['m'].slo.period"),
        (
            "channels: [{name: am, type: alertmanager, url: 'http://am', valid_for: 99999999999999d}]",
            "channels['am'].alertmanager.valid_for",  # the type is part of the location, as for any channel
        ),
        ("rules: [{name: r, kind: drift, when: {finding: drift}, for: 99999999999999d}]", "rules['r'].for"),
    ],
)
def test_an_overflowing_duration_names_its_field(path: Path, yaml_text: str, field: str) -> None:
    message = refused(path, yaml_text + "\n")
    assert message == f"invalid setting {field}: must be at most 3650d (10 years) (in {path})"


@pytest.mark.parametrize(
    ("yaml_text", "field", "words"),
    [
        (
            "rules: [{name: r, kind: drift, when: {finding: drift}, for: 99999999999999999999999}]",
            "rules['r'].for",
            "must be a number of windows from 1 to 1000000, or a duration such as 10m",
        ),
        ("rules: [{name: r, kind: drift, when: {finding: drift}, for: 0}]", "rules['r'].for", "from 1 to"),
        ("windows: {size_ms: 99999999999999999999999}", "windows.size_ms", "less than or equal to 315360000000"),
        ("windows: {label_horizon_ms: 315360000001}", "windows.label_horizon_ms", "less than or equal to"),
        ("worker: {max_age_ms: 1e30}", "worker.max_age_ms", ""),
        ("worker: {checkpoint_interval_ms: 99999999999999999999}", "worker.checkpoint_interval_ms", "less than"),
        ("producer: {message_timeout_ms: 2147483648}", "producer.message_timeout_ms", "2147483647"),
        ("producer: {buffer_max_kbytes: 99999999999999999999}", "producer.buffer_max_kbytes", "2147483647"),
        ("producer: {linger_ms: .inf}", "producer.linger_ms", "900000"),
        ("producer: {linger_ms: .nan}", "producer.linger_ms", ""),
        ("clickhouse: {raw_ttl_days: 99999999999999999999}", "clickhouse.raw_ttl_days", "3650"),
        ("clickhouse: {connect_timeout_s: .inf}", "clickhouse.connect_timeout_s", "3600"),
        ("topics: {partitions: 99999999999999999999}", "topics.partitions", "100000"),
    ],
)
def test_other_numbers_are_bounded(path: Path, yaml_text: str, field: str, words: str) -> None:
    message = refused(path, yaml_text + "\n")
    assert message.startswith(f"invalid setting {field}: ") and words in message, message


def test_environment_variables_are_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMWATCH_ALERTING__REPEAT_INTERVAL", "99999999999999d")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid setting alerting.repeat_interval: must be at most 3650d (10 years) "
        "(from environment variable STREAMWATCH_ALERTING__REPEAT_INTERVAL)"
    )


@pytest.mark.parametrize(
    ("value", "words"), [("[", "not valid JSON"), ("[" * 100_000, "nested too deeply")], ids=["bad", "deep"]
)
def test_bad_json_in_an_environment_variable_is_one_line(
    monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("STREAMWATCH_MODELS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid setting models: {words} (from environment variable STREAMWATCH_MODELS)"


# -- through the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "alerting:\n  repeat_interval: 99999999999999d\n",
            "invalid setting alerting.repeat_interval: must be at most",
        ),
        (BILLION_LAUGHS, "line 1: YAML anchors (&name) are not allowed in a config file"),
        (nested(1000), f"line 1: nested more than {MAX_NESTING} levels deep"),
        ("topics:\n  partitions: " + "9" * 5000 + "\n", "line 2: invalid integer value"),
    ],
    ids=["overflow", "billion-laughs", "deep", "huge-integer"],
)
def test_config_check_prints_one_line_and_exits_2(path: Path, text: str, expected: str) -> None:
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "streamwatch", "config", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamwatch: error: ") and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        ("{name: s, type: slack, webhook_url: 'hooks.slack.example/T0/B0/SECRETPATH'}", "webhook_url"),
        ("{name: w, type: webhook, url: 'ftp://h.example/SECRETPATH', signing_secret: k}", "url"),
        ("{name: a, type: alertmanager, url: 'http:///SECRETPATH'}", "url"),
        ("{name: p, type: pagerduty, routing_key: k, events_url: 'https://h.example:99999/SECRETPATH'}", "events_url"),
    ],
)
def test_channel_urls_are_checked_at_load_without_quoting_them(path: Path, channel: str, field: str) -> None:
    # A bad URL once surfaced only at the first notification, as an error that killed the channel's thread.
    path.write_text(f"channels: [{channel}]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert field in message and "\n" not in message
    assert "SECRETPATH" not in message  # URLs carry secrets: the error says what is wrong, not the URL
