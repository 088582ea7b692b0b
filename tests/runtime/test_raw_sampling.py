"""``clickhouse.raw_events``: all, a deterministic sample of requests, or none of the raw events; dead letters always.

The worker runs against a real broker (noida-db) and real ClickHouse (chdb).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.contract.decode import decode_batch
from streamwatch.contract.encode import Encoder
from streamwatch.runtime.loop import raw_event_kept
from tests.pipeline.test_merge import RAWS, WHOLE, same
from tests.runtime.test_loop import BAD, Setup, complete, credit_rows, heartbeats, run_until

RATE = 0.5


def test_the_sample_is_decided_by_request_the_same_in_every_process() -> None:
    encoder = Encoder(clock_ms=lambda: 1_795_000_000_000)
    raws = []
    for n in range(4_000):
        raws.append(encoder.prediction("m", "1", f"req-{n}", 1.0, {"x": n}, 1, timestamp=1_795_000_000_000))
        raws.append(encoder.label(model="m", request_id=f"req-{n}", label=1, timestamp=1_795_000_000_000))
    raws.append(encoder.features(model="m", features={"x": 1}, event_id="no-request", timestamp=1_795_000_000_000))
    batch = decode_batch(raws)
    kept = {p.request_id for p in batch.predictions if raw_event_kept(p, RATE)}
    assert kept == {label.request_id for label in batch.labels if raw_event_kept(label, RATE)}
    assert 0.45 < len(kept) / 4_000 < 0.55
    assert all(raw_event_kept(p, 1.0) for p in batch.predictions)
    assert {p.request_id for p in batch.predictions if raw_event_kept(p, 0.01)} <= kept  # a smaller share nests
    [feature] = batch.features
    assert raw_event_kept(feature, RATE) == raw_event_kept(SimpleNamespace(event_id="no-request"), RATE)
    # Another process with another string-hash seed (Python's hash() would differ) keeps the same requests.
    program = (
        "import sys; from types import SimpleNamespace as E; from streamwatch.runtime.loop import raw_event_kept; "
        f"print(sorted(n for n in range(4000) if raw_event_kept(E(request_id=f'req-{{n}}', event_id='x'), {RATE})))"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True)
    assert other.stdout.strip() == str(sorted(int(r.split("-")[1]) for r in kept))


def _stored(store: Store, table: str) -> list[str]:
    return [r[0] for r in store.query(f"SELECT request_id FROM {{db}}.{table} FINAL ORDER BY request_id")]


@pytest.mark.kafka
@pytest.mark.parametrize("mode", ["sample", "none"])
def test_the_worker_stores_whole_requests_of_the_sample_or_none_and_every_dead_letter(
    broker: LocalKafka, store: Store, mode: str
) -> None:
    setup = Setup(broker)
    setup.rts = dataclasses.replace(setup.rts, raw_events=mode, raw_sample_rate=RATE)
    published = setup.publish(RAWS, BAD)
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    # What the pipeline computes does not depend on what is stored raw.
    same(credit_rows(store), WHOLE[0])
    assert sorted(d.raw for d in store.dead_letters()) == sorted(BAD)
    decoded = decode_batch(RAWS)
    sent = [*decoded.predictions, *(SimpleNamespace(request_id=key.decode()) for key, _ in heartbeats(0))]
    predictions, labels = _stored(store, "predictions"), _stored(store, "labels")
    if mode == "none":
        assert predictions == labels == []
    else:
        assert predictions == sorted(p.request_id for p in sent if raw_event_kept(p, RATE))
        assert labels == sorted(e.request_id for e in decoded.labels if raw_event_kept(e, RATE))
        assert set(labels) <= set(predictions)  # a request's label is stored exactly when its prediction is
        assert 0.3 < len(predictions) / len(sent) < 0.7
    skipped = runtime.raw_events_skipped
    assert skipped["prediction"] == len(sent) - len(predictions)
    assert skipped["label"] == len(decoded.labels) - len(labels) and skipped["feature"] == 0
