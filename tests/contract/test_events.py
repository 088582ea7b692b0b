"""The wire contract: what it accepts, what it rejects, and how it says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.contract.events import AlertEvent, LabelEvent, PredictionEvent, RetrainEvent, parse_event
from streamwatch.contract.limits import MAX_EVENT_BYTES, MAX_FEATURES, MAX_KEY_LENGTH, MAX_STRING_LENGTH
from streamwatch.errors import ContractError

PREDICTION = {
    "type": "prediction",
    "schema_version": 1,
    "event_id": "e-1",
    "request_id": "r-1",
    "timestamp": "2026-11-23T10:15:00.250Z",
    "model": "credit-risk",
    "model_version": "3.1.0",
    "variant": "canary",
    "features": {"age": 42, "income": 52000.5, "region": "north", "has_card": True, "debt": None},
    "prediction": 1,
    "score": 0.83,
    "latency_ms": 12.5,
    "status": "ok",
    "segments": {"gender": "F"},
    "metadata": {"git_sha": "abc123"},
}


def parse(**changes: object) -> object:
    # The standard library's encoder, because orjson refuses integers over 64 bits.
    return parse_event(json.dumps({**PREDICTION, **changes}))


def test_a_full_prediction_round_trips() -> None:
    event = parse()
    assert isinstance(event, PredictionEvent)
    assert event.timestamp == datetime(2026, 11, 23, 10, 15, 0, 250000, tzinfo=UTC)
    assert event.features["debt"] is None and event.features["has_card"] is True
    again = parse_event(event.model_dump_json())
    assert again == event


def test_defaults_fill_optional_fields() -> None:
    event = parse_event(
        b'{"type":"prediction","event_id":"e","request_id":"r","timestamp":0,'
        b'"model":"m","model_version":"1","prediction":"approve","latency_ms":0}'
    )
    assert (event.variant, event.status, event.score, event.features, event.schema_version) == (
        "production",
        "ok",
        None,
        {},
        1,
    )


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1763900000000, datetime(2025, 11, 23, 12, 13, 20, tzinfo=UTC)),
        ("2026-11-23T10:00:00Z", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("2026-11-23T11:30:00+01:30", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("2026-11-23 10:00:00.5-02:00", datetime(2026, 11, 23, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-23t10:00:00z", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_are_stored_as_utc(stamp: object, expected: datetime) -> None:
    event = parse(timestamp=stamp)
    assert event.timestamp == expected and event.timestamp.tzinfo == UTC


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"score": "0.5"}, "score", "valid number"),
        ({"score": 1.5}, "score", "less than or equal to 1"),
        ({"latency_ms": -1}, "latency_ms", "greater than or equal to 0"),
        ({"latency_ms": True}, "latency_ms", "valid number"),
        ({"features": {"age": [42]}}, "features.age", "not list"),
        ({"features": {"age": {"v": 1}}}, "features.age", "not dict"),
        ({"features": {"x" * (MAX_KEY_LENGTH + 1): 1}}, "(the name)", "at most 128"),
        ({"features": {"a\nb": 1}}, "features", "control characters"),
        ({"features": {"x": "y" * (MAX_STRING_LENGTH + 1)}}, "features.x", "longer than 1024"),
        ({"features": {"x": 2**64}}, "features.x", "64 bits"),
        ({"features": {f"f{i}": 1 for i in range(MAX_FEATURES + 1)}}, "features", "at most 1000"),
        ({"segments": {"gender": 1}}, "segments.gender", "valid string"),
        ({"variant": "blue"}, "variant", "'production', 'canary' or 'shadow'"),
        ({"status": "ok", "prediction": None}, "prediction", "required when status is 'ok'"),
        ({"segment": {"gender": "F"}}, "segment", "unknown field"),
        ({"schema_version": 3}, "schema_version", "must be 1 or 2"),
        ({"schema_version": 1, "embeddings": {"text": [0.5]}}, "embeddings", "requires schema_version 2"),
        ({"schema_version": 2, "embeddings": {"text": []}}, "embeddings.text", "at least 1"),
        ({"schema_version": 2, "embeddings": {"text": ["1"]}}, "embeddings.text[0]", "number"),
        ({"timestamp": "2026-11-23T10:00:00"}, "timestamp", "UTC offset"),
        ({"timestamp": "yesterday"}, "timestamp", "RFC 3339"),
        ({"timestamp": "2026-13-01T00:00:00Z"}, "timestamp", "RFC 3339"),
        ({"timestamp": "2026-11-23"}, "timestamp", "RFC 3339"),
        ({"timestamp": 1.5e12}, "timestamp", "not float"),
        ({"timestamp": -1}, "timestamp", "out of range"),
        ({"event_id": ""}, "event_id", "at least 1 character"),
        ({"request_id": "r" * 129}, "request_id", "at most 128"),
        ({"model": None}, "model", "valid string"),
    ],
)
def test_rejections_name_the_field(changes: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse(**changes)
    message = str(caught.value)
    assert message.startswith("prediction event: ")
    assert field in caught.value.field, message
    assert words in message
    assert "\n" not in message


def test_missing_required_field_is_named() -> None:
    body = dict(PREDICTION)
    del body["latency_ms"]
    with pytest.raises(ContractError, match=r"^prediction event: latency_ms: required field is missing$"):
        parse_event(orjson.dumps(body))


def test_values_never_appear_in_error_messages() -> None:
    # Event values can be personal data; errors end up in logs and dead letters.
    with pytest.raises(ContractError) as caught:
        parse(features={"email": "jane.doe@example.org" * 60})
    assert "jane.doe" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "event: not valid JSON"),
        (b"[1, 2]", "event: must be a JSON object"),
        (b'{"model": "m"}', "type: missing"),
        (b'{"type": "click"}', "type: unknown event type"),
        (b" " * (MAX_EVENT_BYTES + 1), "exceeds the 65536-byte limit"),
    ],
)
def test_malformed_input_is_rejected(raw: bytes, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_event(raw)


def test_labels_and_features() -> None:
    label = parse_event(b'{"type":"label","event_id":"e","request_id":"r","timestamp":5,"model":"m","label":"fraud"}')
    assert isinstance(label, LabelEvent) and label.label == "fraud"
    with pytest.raises(ContractError, match="label event: label: must be a number, string or boolean, not NoneType"):
        parse_event(b'{"type":"label","event_id":"e","request_id":"r","timestamp":5,"model":"m","label":null}')
    with pytest.raises(ContractError, match="feature event: features: Dictionary should have at least 1 item"):
        parse_event(b'{"type":"feature","event_id":"e","timestamp":5,"model":"m","features":{}}')


def test_alert_and_retrain_events_only_when_asked_for() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    alert = AlertEvent(
        event_id="a1",
        timestamp=now,
        fingerprint="f" * 16,
        rule="drift",
        kind="drift",
        severity="warning",
        status="firing",
        model="m",
        model_version="1",
        reason="psi 0.31 > 0.2 on income",
        metric="psi",
        feature="income",
        value=0.31,
        threshold=0.2,
        window={"start": now - timedelta(minutes=1), "end": now},
        starts_at=now,
        evidence={"psi": 0.31, "bins": [1, 2]},
        example_request_ids=["r1"],
    )
    retrain = RetrainEvent(
        event_id="t1",
        timestamp=now,
        model="m",
        model_version="1",
        severity="critical",
        reason="drift",
        windows=[{"start": now - timedelta(hours=1), "end": now}],
        suggested_data_start=now - timedelta(days=30),
    )
    for event in (alert, retrain):
        raw = event.model_dump_json()
        assert parse_event(raw, any_type=True) == event
        with pytest.raises(ContractError, match="type: unknown event type"):
            parse_event(raw)
    with pytest.raises(ContractError, match="alert event: window.end: must be after start"):
        parse_event(
            alert.model_dump_json().replace('"start":"2026-11-22T23:59', '"start":"2026-11-23T00:09'), any_type=True
        )


def test_timestamps_serialise_as_rfc3339_utc() -> None:
    event = parse(timestamp="2026-11-23T11:00:00.123+01:00")
    assert orjson.loads(event.model_dump_json())["timestamp"] == "2026-11-23T10:00:00.123Z"


# JSON text is Unicode: lone surrogates (Cs) cannot be sent at all.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=50)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@given(
    features=st.dictionaries(names, scalars, max_size=30),
    segments=st.dictionaries(names, text, max_size=5),
    stamp=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
)
def test_any_valid_prediction_round_trips_through_json(features, segments, stamp) -> None:  # type: ignore[no-untyped-def]
    event = PredictionEvent(
        event_id="e",
        request_id="r",
        timestamp=stamp,
        model="m",
        model_version="v",
        features=features,
        segments=segments,
        prediction=True,
        latency_ms=1.0,
    )
    again = parse_event(event.model_dump_json())
    assert again.features == features and again.segments == segments
    # The wire carries milliseconds.
    assert abs(again.timestamp - stamp) < timedelta(milliseconds=1)
