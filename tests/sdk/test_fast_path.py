"""log_prediction's fast path agrees with the encoder, input for input, without a broker.

The fast path inlines the checks a typical event needs and hands everything
else to :class:`~streamwatch.contract.encode.Encoder`; whatever it accepts, the
encoder accepts too, and the event decodes to the same values.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamwatch import ContractError, Producer
from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.decode import decode_batch
from streamwatch.contract.encode import Encoder
from streamwatch.contract.limits import MAX_STRING_LENGTH
from streamwatch.sdk.ratelimit import RateLimitedLog


class Capture:
    """A transport that keeps what it is sent, or refuses it as a full buffer would."""

    send_errors: tuple[type[Exception], ...] = (ValueError,)

    def __init__(self, *, full: bool = False) -> None:
        self.sent: list[bytes] = []
        self.attempts = 0
        self.full = full

    def send(self, topic: str, value: bytes, key: str | bytes | None) -> None:
        self.attempts += 1
        if self.full:
            raise BufferError
        self.sent.append(value)

    def poll(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.005))  # so that close(), which waits for the poll thread, is quick

    def flush(self, timeout: float) -> int:
        return 0

    def pending(self) -> int:
        return 0

    def close(self, timeout: float) -> int:
        return 0


def producer(**kwargs: Any) -> tuple[Producer, Capture]:
    transport = Capture()
    return Producer(settings=load_settings(), transport=transport, **kwargs), transport


def typical(i: int) -> dict[str, Any]:
    return {
        "request_id": f"r-{i}",
        "features": {"age": 20 + i, "income": 1000.5 * i, "region": "north", "flag": i % 2 == 0, "missing": None},
        "prediction": i % 2,
        "score": 0.25,
        "latency_ms": 12.5,
        "segments": {"gender": "F"},
    }


def count_encoder_calls(monitor: Producer) -> list[int]:
    calls = [0]
    encode = monitor._encode_prediction

    def counting(*args: Any) -> bytes:
        calls[0] += 1
        return encode(*args)

    monitor._encode_prediction = counting  # type: ignore[method-assign]  # a spy on the slow path
    return calls


def test_a_typical_event_takes_the_fast_path_once_its_names_are_known() -> None:
    monitor, transport = producer(model="credit-risk", model_version="3.1.0", strict=True)
    slow = count_encoder_calls(monitor)
    for i in range(50):
        monitor.log_prediction(**typical(i))
    assert slow[0] == 1  # the first event's names were new: the encoder checked and remembered them
    reference = Encoder(clock_ms=now_ms, event_ids=lambda: "e")
    for i, payload in enumerate(transport.sent):
        body, expected = orjson.loads(payload), orjson.loads(reference.prediction("credit-risk", "3.1.0", **typical(i)))
        assert body.keys() == expected.keys()
        assert {k: v for k, v in body.items() if k not in ("event_id", "timestamp")} == {
            k: v for k, v in expected.items() if k not in ("event_id", "timestamp")
        }
    batch = decode_batch(transport.sent)
    assert len(batch.predictions) == 50 and not batch.dead_letters
    assert len({event.event_id for event in batch.predictions}) == 50
    monitor.close()


def test_what_the_fast_path_is_unsure_of_goes_to_the_encoder() -> None:
    monitor, transport = producer(model="m", model_version="1", strict=True)
    slow = count_encoder_calls(monitor)
    monitor.log_prediction(**typical(0))
    unusual: list[dict[str, Any]] = [
        {"features": {"age": np.int64(3)}},  # numpy values are unwrapped by the encoder
        {"features": {"new-name": 1}},  # a name not seen yet
        {"timestamp": datetime(2026, 1, 1, tzinfo=UTC)},
        {"status": "error", "prediction": None, "error": TimeoutError("slow")},
        {"metadata": {"host": "a"}},
        {"event_id": "mine"},
    ]
    for change in unusual:
        monitor.log_prediction(**{**typical(1), **change})
    assert slow[0] == 1 + len(unusual)
    # An event longer than the string limit stays on the fast path, its strings measured there.
    monitor.log_prediction(**{**typical(1), "features": {"age": "x" * MAX_STRING_LENGTH}})
    assert slow[0] == 1 + len(unusual) and orjson.loads(transport.sent[-1])["features"]["age"] == "x" * 1024
    assert len(transport.sent) == 2 + len(unusual)
    assert not decode_batch(transport.sent).dead_letters
    monitor.close()


def test_invalid_events_are_refused_and_counted_as_before(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="streamwatch")
    monitor, transport = producer(model="m", model_version="1")
    monitor.log_prediction(**typical(0))
    invalid: list[dict[str, Any]] = [
        {"score": 1.5},
        {"latency_ms": float("nan")},
        {"latency_ms": float("inf")},
        {"prediction": float("inf")},
        {"prediction": float("nan")},
        {"prediction": None},
        {"prediction": 2**64},
        {"features": {"age": [1]}},
        {"features": {"age": {"a": 1}}},
        {"segments": {"gender": 1}},
        {"request_id": "a\nb"},
        {"variant": "blue"},
        {"variant": ["unhashable"]},  # raised TypeError into the caller before
        {"status": "fine"},
        {"timestamp": -1},
        {"features": {"age": "x" * (MAX_STRING_LENGTH + 1)}},
        {"segments": {"gender": "x" * (MAX_STRING_LENGTH + 1)}},
        {"model": ""},  # falls back to the default model, as before: valid
    ]
    for change in invalid:
        monitor.log_prediction(**{**typical(1), **change})
    stats = monitor.stats()
    assert stats.dropped_invalid == len(invalid) - 1
    assert stats.queued == len(transport.sent) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("score: must be a number between 0 and 1" in m for m in messages)
    monitor.close()


def test_changing_the_default_model_changes_the_events() -> None:
    monitor, transport = producer(model="a", model_version="1")
    monitor.log_prediction(**typical(0))
    monitor.model, monitor.model_version = "b", "2"
    monitor.log_prediction(**typical(1))
    monitor.log_prediction(**typical(2), model="c", model_version="3", variant="shadow")
    bodies = [orjson.loads(p) for p in transport.sent]
    assert [(b["model"], b["model_version"], b["variant"]) for b in bodies] == [
        ("a", "1", "production"),
        ("b", "2", "production"),
        ("c", "3", "shadow"),
    ]
    monitor.close()


def test_a_full_buffer_is_tried_once_and_counted_once() -> None:
    transport = Capture(full=True)
    monitor = Producer(settings=load_settings(), transport=transport, model="m", model_version="1")
    for i in range(10):
        monitor.log_prediction(**typical(i))
    assert transport.attempts == 10
    assert monitor.stats().dropped_buffer_full == 10
    monitor.close()


def test_suppressed_warnings_are_counted_exactly_across_threads(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t"), 10.0, clock=lambda: now[0])
    log.warning("down", "broker down")

    def work() -> None:
        for _ in range(20_000):
            log.warning("down", "broker down")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    now[0] = 10.0
    log.warning("down", "broker down")
    assert [r.getMessage() for r in caplog.records][-1] == "broker down (80000 similar messages suppressed)"


# Inputs a caller might pass, valid or not: a valid event with at most one field replaced.
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6)
good_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=6)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**65),
    st.floats(),
    text,
    st.just("s" * (MAX_STRING_LENGTH + 1)),
    st.just(np.float32(1.5)),
    st.just([1]),
    st.just(b"x"),
)
valid = {
    "request_id": st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1), good_names),
    "latency_ms": st.one_of(st.floats(0, 1e6), st.integers(0, 10**6)),
    "features": st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "c"]), scalars, max_size=3)),
    "prediction": st.one_of(st.booleans(), st.integers(0, 5), st.floats(-1, 1), text),
    "score": st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0, 1])),
    "variant": st.sampled_from(["production", "canary", "shadow"]),
    "segments": st.one_of(st.none(), st.dictionaries(st.sampled_from(["g", "h"]), text, max_size=2)),
    "timestamp": st.one_of(st.none(), st.integers(0, 4_000_000_000_000)),
}
corrupt = {
    "request_id": st.one_of(st.just(""), st.just("r" * 129), st.just("a\x7fb"), st.integers()),
    "latency_ms": st.one_of(st.floats(), st.booleans(), st.just("3")),
    "features": st.one_of(st.dictionaries(names, scalars, max_size=3), st.just([("a", 1)])),
    "prediction": scalars,
    "score": st.one_of(st.floats(), st.booleans(), st.just(2)),
    "variant": st.sampled_from(["blue", None]),
    "status": st.sampled_from(["error", "OK"]),
    "segments": st.dictionaries(names, st.one_of(text, st.integers()), max_size=2),
    "timestamp": st.one_of(st.integers(-5, 300_000_000_000_000), st.just(1.5), st.just(True)),
    "model": st.one_of(st.none(), names, st.just("m" * 129)),
}


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    kw = {name: draw(strategy) for name, strategy in valid.items()}
    field = draw(st.sampled_from([None, *corrupt]))
    if field is not None:
        kw[field] = draw(corrupt[field])
    return kw


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(calls())
def test_the_fast_path_and_the_encoder_agree(kw: dict[str, Any]) -> None:
    monitor, transport = producer(model="m", model_version="1", strict=True)
    # The encoder knows the names already, so the fast path is taken whenever it can be.
    monitor._encoder.names.update({"a", "b", "c", "g", "h"})
    reference = Encoder(clock_ms=lambda: 1_795_000_000_000, event_ids=lambda: "e")
    model = kw.pop("model", None)
    try:
        expected = orjson.loads(reference.prediction(model or "m", "1", **kw))
    except ContractError as exc:
        with pytest.raises(ContractError) as raised:
            monitor.log_prediction(**kw, model=model)
        assert str(raised.value) == str(exc)
        monitor.close()
        return
    before = now_ms()
    monitor.log_prediction(**kw, model=model)
    after = now_ms()
    monitor.close()
    (payload,) = transport.sent
    body = orjson.loads(payload)
    assert body.pop("event_id") and expected.pop("event_id") == "e"
    stamp, expected_stamp = body.pop("timestamp"), expected.pop("timestamp")
    if kw["timestamp"] is None:
        assert before <= stamp <= after
    else:
        assert stamp == expected_stamp
    assert body == expected
    (event,) = decode_batch([payload]).predictions
    assert event.features == expected["features"] and event.prediction == expected["prediction"]
