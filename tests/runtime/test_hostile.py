"""Hostile producers through the worker (Kafka, ClickHouse): screened, counted, and the good traffic exact."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.pipeline import Pipeline
from tests.pipeline.test_merge import PROFILE, RAWS, WHOLE, same
from tests.pipeline.test_pipeline import START
from tests.runtime.test_loop import Setup, complete, credit_rows, run_until

pytestmark = pytest.mark.kafka


def guarded() -> Pipeline:
    """The test stream's pipeline, with the screens a worker built from settings has."""
    return Pipeline(
        {("credit", "3"): PROFILE},
        rolling_windows=3,
        min_samples=5,
        slices={"credit": [["gender"]]},
        max_lead_ms=300_000,
        admit=lambda model, version: model in ("credit", "clock"),
    )


def test_invented_models_a_reused_request_id_and_a_leap_ahead_are_screened_and_counted(
    broker: LocalKafka, store: Store
) -> None:
    encoder = Encoder(clock_ms=now_ms)

    def prediction(model: str, request: str, at: int, **extra: Any) -> bytes:
        return encoder.prediction(model, "1", request, 5.0, {}, 1, 0.5, "production", "ok", None, None, None, at, None)

    invented = [prediction(f"m{i}", f"x{i}", START) for i in range(300)]
    reused = [prediction("clock", "same", START + i) for i in range(100)]
    leap = [prediction("clock", "leap", START + 9 * 3_600_000)]  # 9 hours ahead of the stream
    setup = Setup(broker)
    published = setup.publish(invented + reused + leap + RAWS)
    runtime = setup.runtime(store, guarded())
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    same(credit_rows(store), WHOLE[0])  # the good traffic, exact: nothing of it late or lost
    screened = runtime.metrics.screened
    assert screened.labels("unknown_model")._value.get() == 300
    assert screened.labels("request_id_reused")._value.get() == 100 - 16
    assert screened.labels("future_leap")._value.get() >= 1
    reasons = [d.reason for d in store.dead_letters()]
    assert sum("is not monitored" in r for r in reasons) == 300
    assert sum("under the same request_id" in r for r in reasons) == 84
    ids = {orjson.loads(d.raw)["request_id"] for d in store.dead_letters()}
    assert "leap" not in ids  # counted in its own window, not refused: it only did not move event time
    assert runtime.metrics.late_events._value.get() == 0
