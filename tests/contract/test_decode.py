"""The batch decoder gives the contract's verdict on every event, with the contract's words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamwatch.contract.decode import DeadLetter, decode_batch
from streamwatch.contract.events import parse_event
from streamwatch.errors import ContractError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=10)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.just("x" * 1025),
    st.just([1]),
    st.just({"a": 1}),
    st.just(""),
    st.just("a\nb"),
    st.just("k" * 129),
    st.sampled_from(
        [
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "production",
            "canary",
            "error",
            "ok",
            "label",
            "feature",
            "prediction",
        ]
    ),
    st.sampled_from([2.0**63, -(2.0**63), 1.8446744073709552e19, 1e300, 0.5, 1, 0, -1, 2]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False), text
)
valid = {
    "prediction": st.fixed_dictionaries(
        {
            "type": st.just("prediction"),
            "event_id": names,
            "request_id": names,
            "timestamp": st.one_of(st.integers(0, 4 * 10**12), st.just("2026-11-23T10:00:00.5+01:00")),
            "model": names,
            "model_version": names,
            "latency_ms": st.floats(0, 1e6),
            "prediction": scalars.filter(lambda v: v is not None),
        },
        optional={
            "schema_version": st.sampled_from([1, 2]),
            # (a version 1 event with embeddings breaks the contract: the property covers both verdicts)
            "embeddings": st.dictionaries(
                names,
                st.lists(st.one_of(st.floats(-1e3, 1e3), st.integers(-5, 5), st.just("x"), st.just(1e308)), max_size=4),
                max_size=2,
            ),
            "variant": st.sampled_from(["production", "canary", "shadow"]),
            "features": st.dictionaries(names, scalars, max_size=6),
            "score": st.floats(0, 1),
            "status": st.just("ok"),
            "segments": st.dictionaries(names, text, max_size=3),
            "metadata": st.dictionaries(names, text, max_size=2),
            "error": text,
        },
    ),
    "feature": st.fixed_dictionaries(
        {
            "type": st.just("feature"),
            "event_id": names,
            "timestamp": st.integers(0, 4 * 10**12),
            "model": names,
            "features": st.dictionaries(names, scalars, min_size=1, max_size=6),
        },
        optional={"request_id": names, "model_version": names, "schema_version": st.sampled_from([1, 2])},
    ),
    "label": st.fixed_dictionaries(
        {
            "type": st.just("label"),
            "event_id": names,
            "request_id": names,
            "timestamp": st.integers(0, 4 * 10**12),
            "model": names,
            "label": scalars.filter(lambda v: v is not None),
        },
        optional={"schema_version": st.sampled_from([1, 2])},
    ),
}


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """A valid event, then at most one field replaced, added or removed, serialised as JSON."""
    body: dict[str, Any] = draw(st.sampled_from(list(valid)).flatmap(lambda kind: valid[kind]))
    change = draw(st.sampled_from(["none", "replace", "add", "remove", "feature", "segment"]))
    if change == "replace":
        body[draw(st.sampled_from(sorted(body)))] = draw(anything)
    elif change == "add":
        body[draw(st.sampled_from(["segment", "extra", "status", "score", "error", "variant", "schema_version"]))] = (
            draw(anything)
        )
    elif change == "remove":
        del body[draw(st.sampled_from(sorted(body)))]
    elif change == "segment" and body["type"] == "prediction":
        body.setdefault("segments", {})[draw(st.one_of(names, st.just("s\x00")))] = draw(anything)
    elif change == "feature" and "features" in body:
        body["features"][draw(st.one_of(names, st.just("a\tb"), st.just("n" * 129)))] = draw(anything)
    return json.dumps(body).encode()  # the standard library writes integers of any size


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=5))
def test_decoder_agrees_with_the_contract(raws: list[bytes]) -> None:
    batch = decode_batch(raws)
    dead = {d.index: d.reason for d in batch.dead_letters}
    kept = iter(batch.predictions + batch.features + batch.labels)
    decoded = {id(e) for e in kept}
    assert len(decoded) + len(dead) == len(raws)
    for index, raw in enumerate(raws):
        try:
            event = parse_event(raw)
        except ContractError as exc:
            assert dead.get(index) == str(exc), raw
            continue
        assert index not in dead, (raw, dead.get(index))
        [decoded] = getattr(decode_batch([raw]), f"{event.type}s")
        assert decoded.timestamp == (event.timestamp - EPOCH) // timedelta(milliseconds=1)
        for name in ("model", "request_id", "features", "segments", "prediction", "label", "score", "variant"):
            if hasattr(event, name):
                assert getattr(decoded, name) == getattr(event, name), name


def test_decoded_events_carry_defaults_and_epoch_ms() -> None:
    raw = (
        b'{"type":"prediction","event_id":"e","request_id":"r","timestamp":"1970-01-01T00:00:01.5Z",'
        b'"model":"m","model_version":"1","prediction":1,"latency_ms":2}'
    )
    [event] = decode_batch([raw]).predictions
    assert event.timestamp == 1500
    assert (event.variant, event.status, event.score, event.features, event.segments) == (
        "production",
        "ok",
        None,
        {},
        {},
    )


def test_dead_letters_keep_their_position_and_reason() -> None:
    good = b'{"type":"label","event_id":"e","request_id":"r","timestamp":1,"model":"m","label":1}'
    batch = decode_batch([good, b"{oops", good, b"x" * 70_000, orjson.dumps({"type": "label"})])
    assert [d.index for d in batch.dead_letters] == [1, 3, 4]
    assert batch.dead_letters[0] == DeadLetter(1, "event: not valid JSON (key must be a string at line 1 column 2)")
    assert "70000 bytes exceeds" in batch.dead_letters[1].reason
    assert batch.dead_letters[2].reason.startswith("label event: event_id: required field is missing")
    assert len(batch.labels) == 2


def test_big_integers_are_judged_by_the_contract() -> None:
    template = '{{"type":"label","event_id":"e","request_id":"r","timestamp":1,"model":"m","label":{}}}'
    batch = decode_batch([template.format(n).encode() for n in (2**64 - 1, 2**64, "1.8446744073709552e19")])
    assert [d.index for d in batch.dead_letters] == [1]
    assert [e.label for e in batch.labels] == [2**64 - 1, 1.8446744073709552e19]


def test_decoded_events_are_invisible_to_the_garbage_collector() -> None:
    import gc

    raw = (
        b'{"type":"prediction","event_id":"e","request_id":"r","timestamp":1,"model":"m","model_version":"1",'
        b'"prediction":1,"latency_ms":2,"features":{"a":1.5,"b":"x"},"segments":{"g":"F"}}'
    )
    [event] = decode_batch([raw]).predictions
    assert not gc.is_tracked(event) and not gc.is_tracked(event.features) and not gc.is_tracked(event.segments)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b)))
def test_bytes_that_are_not_utf8_inside_a_string_are_a_dead_letter_not_a_crash(junk: bytes) -> None:
    raw = b'{"type":"label","event_id":"e","request_id":"r","timestamp":1000,"model":"' + junk + b'","label":1}'
    batch = decode_batch([raw])
    assert batch.labels == [] and len(batch.dead_letters) == 1


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_an_empty_message_is_a_dead_letter_with_its_reason() -> None:
    batch = decode_batch([b""])
    assert batch.dead_letters == [DeadLetter(0, "event: empty (a record with no value, such as a Kafka tombstone)")]


@pytest.mark.parametrize(
    ("embedding", "words"),
    [
        (b"[0.5, 1e999]", "embeddings.text[1]"),  # beyond a float: infinite
        (b"[0.5, NaN]", "embeddings.text[1]"),  # not JSON, but pydantic reads NaN: refused as not finite
        (b'[0.5, "1"]', "embeddings.text[1]"),
        (b"[]", "embeddings.text"),
    ],
)
def test_a_bad_embedding_is_a_dead_letter_with_its_reason(embedding: bytes, words: str) -> None:
    good = (
        b'{"type":"prediction","schema_version":2,"event_id":"e1","request_id":"r1","timestamp":1000,"model":"m",'
        b'"model_version":"1","prediction":1,"latency_ms":1.0,"embeddings":{"text":[0.5, 1.5]}}'
    )
    bad = good.replace(b"[0.5, 1.5]", embedding).replace(b'"e1"', b'"e2"')
    batch = decode_batch([good, bad])
    assert [event.event_id for event in batch.predictions] == ["e1"]
    assert batch.predictions[0].embeddings == {"text": [0.5, 1.5]}
    [dead] = batch.dead_letters
    assert dead.index == 1 and words in dead.reason, dead.reason
