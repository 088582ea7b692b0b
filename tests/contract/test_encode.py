"""The SDK's fast encoder agrees with the pydantic contract, input for input."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streamwatch.contract.encode import Encoder
from streamwatch.contract.events import FeatureEvent, LabelEvent, PredictionEvent, parse_event
from streamwatch.contract.limits import MAX_EVENT_BYTES, MAX_STRING_LENGTH
from streamwatch.errors import ContractError

NOW_MS = 1_795_000_000_000


def encoder() -> Encoder:
    return Encoder(event_ids=lambda: "e-1", clock_ms=lambda: NOW_MS)


# Inputs a caller might pass, valid or not.
unicode_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
good_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
any_names = st.one_of(
    good_names, st.just(""), st.just("a\tb"), st.just("x" * 129), st.just("\x7f"), st.integers(), st.none()
)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    floats,
    unicode_text,
    st.just("s" * (MAX_STRING_LENGTH + 1)),
    st.just(2**64),
    st.just(-(2**63) - 1),
    st.just(np.float32(1.5)),
    st.just(np.int64(7)),
    st.just(np.bool_(False)),
    st.just([1]),
    st.just({"a": 1}),
    st.just(b"bytes"),
)
timestamps = st.one_of(
    st.none(),
    st.integers(-10, 300_000_000_000_000),
    st.just(1.5),
    st.just(True),
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9000, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),  # naive: refused
)
valid_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False), unicode_text
)
valid_fields = {
    "model": good_names,
    "model_version": good_names,
    "request_id": good_names,
    "latency_ms": st.one_of(st.floats(0, 1e6), st.integers(0, 10**6)),
    "features": st.dictionaries(good_names, valid_scalars, max_size=12),
    "prediction": st.one_of(st.booleans(), st.integers(0, 5), st.floats(-1, 1), unicode_text),
    "score": st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0, 1])),
    "variant": st.sampled_from(["production", "canary", "shadow"]),
    "status": st.sampled_from(["ok", "error"]),
    "segments": st.dictionaries(good_names, unicode_text, max_size=3),
    "timestamp": st.one_of(st.none(), st.integers(0, 4_000_000_000_000)),
}
any_fields = {
    "model": any_names,
    "model_version": any_names,
    "request_id": st.one_of(st.just(""), st.just("r" * 129), st.just("a\nb"), st.integers()),
    "latency_ms": st.one_of(floats, st.floats(-10, 10), st.integers(-5, 5), st.booleans(), st.just("3")),
    "features": st.one_of(st.none(), st.dictionaries(any_names.filter(lambda k: k is not None), scalars, max_size=12)),
    "prediction": scalars,
    "score": st.one_of(floats, st.floats(-0.5, 1.5), st.sampled_from([1.2, -0.1, 2]), st.booleans(), st.just("0.5")),
    "variant": st.sampled_from(["blue", "Production", None]),
    "status": st.sampled_from(["fine", None, "OK"]),
    "segments": st.one_of(
        st.none(),
        st.dictionaries(any_names.filter(lambda k: k is not None), st.one_of(unicode_text, st.integers()), max_size=3),
    ),
    "timestamp": timestamps,
}


@st.composite
def predictions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid prediction with at most one field replaced by an arbitrary value."""
    kw = {name: draw(strategy) for name, strategy in valid_fields.items()}
    corrupt = draw(st.sampled_from([None, *any_fields]))
    if corrupt is not None:
        kw[corrupt] = draw(any_fields[corrupt])
    return kw


def plain(value: Any) -> Any:
    """What a value becomes on the wire: numpy scalars unwrapped, non-finite floats null."""
    if isinstance(value, np.generic):
        value = value.item()
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def contract_accepts(model: type, body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except (ValidationError, ContractError):
        return False
    return len(orjson.dumps(body, default=str)) <= MAX_EVENT_BYTES if _json_safe(body) else False


def _json_safe(body: dict[str, Any]) -> bool:
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return False
    return True


def reference_body(kw: dict[str, Any]) -> dict[str, Any]:
    features = kw["features"] or {}
    if isinstance(features, dict):
        features = {k: plain(v) for k, v in features.items()}
    prediction = kw["prediction"]
    if isinstance(prediction, np.generic):
        prediction = prediction.item()
    stamp = kw["timestamp"]
    return {
        "type": "prediction",
        "event_id": "e-1",
        "request_id": kw["request_id"],
        "timestamp": NOW_MS if stamp is None else stamp,
        "model": kw["model"],
        "model_version": kw["model_version"],
        "variant": kw["variant"],
        "features": features,
        "prediction": prediction,
        "score": kw["score"],
        "latency_ms": kw["latency_ms"],
        "status": kw["status"],
        "segments": kw["segments"] or {},
    }


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(predictions())
def test_encoder_and_contract_agree_on_predictions(kw: dict[str, Any]) -> None:
    reference = reference_body(kw)
    try:
        payload = encoder().prediction(**kw)
    except ContractError:
        assert not contract_accepts(PredictionEvent, reference), f"encoder refused a valid event: {kw}"
        return
    assert contract_accepts(PredictionEvent, reference), f"encoder accepted an invalid event: {kw}"
    event = parse_event(payload)
    expected = PredictionEvent.model_validate(reference)
    assert event.features == expected.features
    assert event.segments == expected.segments
    assert event.prediction == expected.prediction and type(event.prediction) is type(expected.prediction)
    assert (event.score, event.latency_ms, event.model, event.request_id) == (
        expected.score,
        expected.latency_ms,
        expected.model,
        expected.request_id,
    )
    assert event.timestamp == expected.timestamp.replace(microsecond=expected.timestamp.microsecond // 1000 * 1000)


@given(
    model=any_names,
    request_id=st.one_of(good_names, st.just(""), st.integers()),
    label=scalars,
    timestamp=timestamps,
)
def test_encoder_and_contract_agree_on_labels(model: Any, request_id: Any, label: Any, timestamp: Any) -> None:
    reference = {
        "type": "label",
        "event_id": "e-1",
        "request_id": request_id,
        "model": model,
        "timestamp": NOW_MS if timestamp is None else timestamp,
        "label": label.item() if isinstance(label, np.generic) else label,
    }
    try:
        payload = encoder().label(model=model, request_id=request_id, label=label, timestamp=timestamp)
    except ContractError:
        assert not contract_accepts(LabelEvent, reference)
        return
    assert contract_accepts(LabelEvent, reference)
    assert parse_event(payload).label == reference["label"]


@given(features=st.dictionaries(good_names, scalars, max_size=8), model_version=st.one_of(st.none(), any_names))
def test_encoder_and_contract_agree_on_features(features: dict[str, Any], model_version: Any) -> None:
    reference = {
        "type": "feature",
        "event_id": "e-1",
        "timestamp": NOW_MS,
        "model": "m",
        "features": {k: plain(v) for k, v in features.items()},
    }
    if model_version is not None:
        reference["model_version"] = model_version
    try:
        payload = encoder().features(model="m", features=features, model_version=model_version)
    except ContractError:
        assert not contract_accepts(FeatureEvent, reference)
        return
    assert contract_accepts(FeatureEvent, reference)
    assert parse_event(payload).features == reference["features"]


def test_a_typical_event_is_compact_and_valid() -> None:
    payload = encoder().prediction(
        model="credit-risk",
        model_version="3.1.0",
        request_id="r-1",
        latency_ms=12.5,
        features={"age": 42, "income": np.float64(52000.5), "region": "north", "missing": float("nan")},
        prediction=1,
        score=0.83,
        segments={"gender": "F"},
        error=None,
    )
    body = orjson.loads(payload)
    assert body["features"] == {"age": 42, "income": 52000.5, "region": "north", "missing": None}
    assert body["timestamp"] == NOW_MS and body["event_id"] == "e-1" and "error" not in body


def test_errors_are_truncated_not_rejected() -> None:
    payload = encoder().prediction(
        model="m",
        model_version="1",
        request_id="r",
        latency_ms=3,
        status="error",
        error=TimeoutError("x" * 5000),
    )
    error = orjson.loads(payload)["error"]
    assert error.startswith("TimeoutError: xxx") and len(error) == MAX_STRING_LENGTH


def test_oversized_events_are_refused() -> None:
    features = {f"f{i:03d}": "v" * 1000 for i in range(70)}
    with pytest.raises(ContractError, match=r"^event: \d+ bytes exceeds the 65536-byte limit$"):
        encoder().prediction(
            model="m", model_version="1", request_id="r", latency_ms=1, prediction=1, features=features
        )


def test_long_strings_are_found_in_large_events() -> None:
    # The fast path skips string lengths only when the payload is shorter than the limit.
    features = {"a": "v" * 600, "b": "w" * (MAX_STRING_LENGTH + 1)}
    with pytest.raises(ContractError, match="^features.b: string longer than 1024 characters$"):
        encoder().prediction(
            model="m", model_version="1", request_id="r", latency_ms=1, prediction=1, features=features
        )


def test_lone_surrogates_are_refused_clearly() -> None:
    with pytest.raises(ContractError, match="^event: cannot be serialised as JSON"):
        encoder().label(model="m", request_id="r", label="\ud800")


def test_name_cache_is_bounded() -> None:
    enc = encoder()
    for i in range(3):
        enc.features(model="m", features={f"{i}-{j}": 1 for j in range(1000)})
    assert len(enc._names) <= 100_000
    assert "0-1" in enc._names  # names are remembered once checked


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ContractError, match="^timestamp: datetime must be timezone-aware"):
        encoder().label(model="m", request_id="r", label=1, timestamp=datetime(2026, 1, 1))


def test_unhashable_variants_and_statuses_are_refused_not_raised() -> None:
    # They raised TypeError (from a frozenset lookup) into the caller, which the SDK promises never to do.
    with pytest.raises(ContractError, match="^variant: must be 'production', 'canary' or 'shadow'$"):
        encoder().prediction(model="m", model_version="1", request_id="r", latency_ms=1, prediction=1, variant=[])  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="^status: must be 'ok' or 'error'$"):
        encoder().prediction(model="m", model_version="1", request_id="r", latency_ms=1, prediction=1, status={})  # type: ignore[arg-type]


@given(model=any_names, model_version=any_names)
def test_prediction_heads_hold_what_the_encoder_writes(model: Any, model_version: Any) -> None:
    enc = encoder()
    heads = enc.prediction_heads(model, model_version)
    try:
        expected = orjson.loads(enc.prediction(model, model_version, "r", 1, prediction=1, variant="shadow"))
    except ContractError:
        assert heads == {}
        return
    assert sorted(heads) == ["canary", "production", "shadow"]
    body = orjson.loads(orjson.dumps({"type": heads["shadow"]}))
    assert body == {k: expected[k] for k in ("type", "schema_version", "model", "model_version", "variant", "status")}
    assert enc.prediction_heads(model, model_version) is heads  # made once


@pytest.mark.parametrize(
    ("vector", "reason"),
    [
        (["1.5"], "flat sequence of numbers"),  # numpy would read the text as a number
        ([1.0, None], "flat sequence of numbers"),
        ([[1.0, 2.0]], "flat sequence of numbers"),
        ([], "1 to 4096 numbers"),
        (np.zeros(4097), "1 to 4096 numbers"),
        (np.array([1e39]), "finite"),  # beyond float32's range
        (np.array([np.nan]), "finite"),
        ([1.0, math.inf], "finite"),
        ([True, False], "flat sequence of numbers"),  # booleans are no numbers to the contract
        (np.array([True]), "flat sequence of numbers"),
        ("0.5", "flat sequence of numbers"),
    ],
)
def test_bad_embeddings_are_refused_naming_the_embedding(vector: Any, reason: str) -> None:
    with pytest.raises(ContractError, match=reason) as caught:
        encoder().prediction("m", "1", "r", 1.0, prediction=1, embeddings={"text": vector})
    assert caught.value.field == "embeddings.text"


def test_embeddings_are_sent_at_float32_precision_in_version_2_events() -> None:
    vector = np.random.default_rng(0).normal(size=4096)  # the largest allowed, at full precision
    payload = encoder().prediction("m", "1", "r", 1.0, prediction=1, embeddings={"text": vector, "image": [1, 2]})
    assert len(payload) < MAX_EVENT_BYTES  # float32 text keeps the largest embedding inside the event limit
    event = parse_event(payload)
    assert isinstance(event, PredictionEvent) and event.schema_version == 2
    # float32's shortest text, read back as float32, is the float32 value exactly
    assert np.array_equal(np.array(event.embeddings["text"], dtype=np.float32), vector.astype(np.float32))
    assert event.embeddings["image"] == [1.0, 2.0]  # a list is sent as it is
    without = parse_event(encoder().prediction("m", "1", "r", 1.0, prediction=1))
    assert isinstance(without, PredictionEvent) and without.schema_version == 1 and without.embeddings == {}
