"""The soak test: live mixed traffic with hostile producers, a flaky ClickHouse and receiver, the worker killed.

Not part of ``make test``: ``make soak`` runs it for 30 minutes (``SOAK_MINUTES`` sets another length).
For its whole length, producers publish live predictions and labels of ``credit``, with a drift of
``income`` in the middle, plus hostile traffic every few seconds (invented model names, a request
id reused hundreds of times, an event nine hours ahead, invented feature names, bad bytes).
ClickHouse refuses 1% of writes (a lost connection), the webhook receiver answers 10% of calls
with a 503, and the worker is killed every 5 minutes (abandoned without a checkpoint, as by
``kill -9``; the next one resumes from the checkpoints).

At the end: the metrics equal those of one clean pipeline fed the good events, the drift alert
fired and resolved in the table and reached the receiver both times, every bad message is a dead
letter, and the worker's state stayed flat (the state every partition and the reporter checkpoint;
the process's RSS is recorded too, but it includes the embedded ClickHouse engine and its data).
The figures go to ``soak-figures.json``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.kafka import KafkaTransport, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.runtime.wiring import build_runtime
from tests.pipeline.test_merge import PROFILE, final_state, same
from tests.receivers import RecordingReceiver
from tests.runtime.test_faults import settled
from tests.runtime.test_loop import credit_rows

MINUTES = float(os.environ.get("SOAK_MINUTES", "0"))
pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(MINUTES <= 0, reason="the soak test runs with `make soak` (SOAK_MINUTES=30)"),
    pytest.mark.timeout(int(MINUTES * 60 * 2 + 600)),
]
KILL_EVERY_S = float(os.environ.get("SOAK_KILL_EVERY_S", "300"))
RATE = 40  # credit predictions per second
SECRET = "whsec-soak"


class FlakyReceiver(RecordingReceiver):
    """Answers one call in ten with a 503: the first, the eleventh, ... (so that even a short run sees one)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _answer(self, path: str) -> tuple[int, dict[str, str], float]:
        with self.lock:
            self.calls += 1
            return (503, {}, 0.0) if self.calls % 10 == 1 else (200, {}, 0.0)


class FlakyClient:
    """The real ClickHouse client, refusing 1% of inserts as a lost connection would."""

    def __init__(self, client: Any) -> None:
        self.client, self.rng, self.refused, self.inserts = client, random.Random(5), 0, 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.inserts += 1
            refuse = self.rng.random() < 0.01
            self.refused += refuse
        if refuse:
            raise OperationalError("connection reset by peer (soak)")
        return self.client.insert(*args, **kwargs)


def soak_settings(broker: LocalKafka, receiver: RecordingReceiver) -> Settings:
    names = ("predictions", "features", "labels", "deadletter", "alerts", "retrain", "control", "notifications")
    settings = load_settings(
        kafka={"bootstrap_servers": broker.bootstrap_servers},
        topics={name: f"soak.{name}" for name in names} | {"silences": "soak.silences", "partitions": 3},
        worker={
            "group": "soak",
            "instance_id": "soak-0",
            "checkpoint_interval_ms": 2_000,
            "idle_timeout_ms": 3_000,
            "report_interval_ms": 500,
            "batch_size": 2_000,
        },
        models=[{"name": "credit", "references": {"3": "credit-3.json"}}],
        rules=[
            {
                "name": "income-drift",
                "kind": "drift",
                "feature": "income",
                "when": {"metric": "wasserstein", "op": ">", "threshold": 0.5},
                "channels": ["hook"],
            }
        ],
        channels=[{"name": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "signing_secret": SECRET}],
        alerting={"default_rules": False, "group_wait": "0s", "group_interval": "0s"},
    )
    t = settings.topics
    create_topics(settings.kafka, [t.predictions, t.features, t.labels], partitions=3)
    create_topics(
        settings.kafka, [t.deadletter, t.alerts, t.retrain, t.control, t.notifications, t.silences], partitions=1
    )
    return settings


def pipeline() -> Pipeline:
    return Pipeline(
        {("credit", "3"): PROFILE},
        rolling_windows=3,
        min_samples=5,
        slices={"credit": [["gender"]]},
        # State is bounded by the label horizon (labels wait that long): 5 minutes here, so a 30-minute
        # run is mostly past it and flat, as a day-long horizon is after its first day.
        label_horizon_ms=300_000,
        max_lead_ms=300_000,
        admit=lambda model, version: model == "credit" and version in (None, "3"),
    )


class Traffic(threading.Thread):
    """Publishes live traffic until stopped; keeps every good event for the clean run."""

    def __init__(self, settings: Settings, drift: tuple[float, float]) -> None:
        super().__init__(daemon=True)
        self.settings, self.drift = settings, drift
        self.stop = threading.Event()
        self.good: list[bytes] = []
        self.bad = 0
        self.hostile = 0
        self.encoder = Encoder(clock_ms=now_ms)
        self.rng = np.random.default_rng(3)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        transport = KafkaTransport(
            self.settings.kafka, self.settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None
        )
        t = self.settings.topics
        n, pending_labels = 0, []
        started = time.monotonic()
        while not self.stop.is_set():
            second = time.monotonic()
            at = now_ms()
            drifting = self.drift[0] <= second - started < self.drift[1]
            for _ in range(RATE):
                n += 1
                request = f"q{n}"
                features = {
                    "income": float(self.rng.normal(50 + 40 * drifting, 10)),
                    "age": int(self.rng.integers(18, 80)),
                    "region": str(self.rng.choice(["north", "south", "east"])),
                }
                score = float(self.rng.random())
                raw = self.encoder.prediction(
                    "credit",
                    "3",
                    request,
                    float(self.rng.lognormal(3, 0.5)),
                    features,
                    int(score > 0.5),
                    score,
                    "production",
                    "ok",
                    None,
                    {"gender": "FM"[n % 2]},
                    None,
                    at,
                    None,
                )
                self._send(transport, t.predictions, raw, request)
                if n % 2:
                    pending_labels.append((request, int(self.rng.random() < score)))
            for request, label in pending_labels:
                raw = self.encoder.label(model="credit", request_id=request, label=label, timestamp=now_ms())
                self._send(transport, t.labels, raw, request)
            pending_labels = []
            if n % (RATE * 5) == 0:
                self._hostile(transport, t.predictions)
            transport.poll(0)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
        # Heartbeats far later close every window of credit (no checkpoint-free window stays open).
        assert transport.close(30.0) == 0

    def _send(self, transport: KafkaTransport, topic: str, raw: bytes, key: str, good: bool = True) -> None:
        while True:
            try:
                transport.send(topic, raw, key.encode())
                break
            except BufferError:
                transport.poll(0.1)
        if good:
            self.good.append(raw)

    def _hostile(self, transport: KafkaTransport, topic: str) -> None:
        at = now_ms()
        for i in range(50):  # invented model names
            raw = self.encoder.prediction(
                f"m{self.hostile}-{i}",
                "1",
                f"x{i}",
                5.0,
                {},
                1,
                0.5,
                "production",
                "error",
                "boom",
                None,
                None,
                at,
                None,
            )
            self._send(transport, topic, raw, f"x{i}", good=False)
        for _ in range(100):  # one request id reused (the first 16 of each burst count: kept as good)
            raw = self.encoder.prediction(
                "credit",
                "3",
                f"same-{self.hostile}",
                5.0,
                {"income": 50.0},
                1,
                0.5,
                "production",
                "ok",
                None,
                {"gender": "F"},
                None,
                at,
                None,
            )
            self._send(transport, topic, raw, f"same-{self.hostile}", good=True)
        future = self.encoder.prediction(
            "credit",
            "3",
            f"future-{self.hostile}",
            5.0,
            {},
            1,
            0.5,
            "production",
            "ok",
            None,
            None,
            None,
            at + 9 * 3_600_000,
            None,
        )
        self._send(transport, topic, future, f"future-{self.hostile}", good=False)
        junk = self.encoder.prediction(
            "credit",
            "3",
            f"junk-{self.hostile}",
            5.0,
            {f"junk{i}": 1.0 for i in range(40)},
            1,
            0.5,
            "production",
            "ok",
            None,
            {"gender": "M"},
            None,
            at,
            None,
        )
        self._send(transport, topic, junk, f"junk-{self.hostile}", good=True)
        for raw in (b"not json", b'{"type":"prediction"}', b"\xff" * 100):
            self._send(transport, topic, raw, "bad", good=False)
            self.bad += 1
        self.hostile += 1


def state_kb(runtime: Any) -> float:
    """What the worker holds: every owned stage's state and the reporter's, as checkpointed."""
    from streamwatch.pipeline import state as state_codec

    size = sum(len(state_codec.dumps(s.stage.state())) for s in runtime.streams.values())
    runner = runtime.report_runner
    if runtime._reporting and runner._merger is not None:
        size += len(state_codec.dumps({"merger": runner._merger, "reporter": runner.pipeline.reporter.state()}))
        if runner.alerting is not None:
            size += len(state_codec.dumps(runner.alerting.state()))
    return round(size / 1024, 1)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_soak(broker: LocalKafka, store: Store) -> None:
    total_s = MINUTES * 60
    with FlakyReceiver() as receiver:
        settings = soak_settings(broker, receiver)
        flaky = FlakyClient(store.client)
        faulty = Store(flaky, store.database)
        traffic = Traffic(settings, drift=(total_s * 0.4, total_s * 0.4 + min(180, total_s * 0.25)))
        traffic.start()
        kills, memory = 0, []
        started = last_kill = last_sample = time.monotonic()
        runtime = build_runtime(settings, pipeline(), faulty, partitions=3)
        try:
            while time.monotonic() - started < total_s:
                runtime.step()
                now = time.monotonic()
                if now - last_sample >= 30:
                    memory.append((round(now - started), round(rss_mb(), 1), state_kb(runtime)))
                    last_sample = now
                if now - last_kill >= KILL_EVERY_S:
                    runtime.failed = True  # as by kill -9: nothing more is checkpointed
                    runtime.close()
                    kills += 1
                    last_kill = now
                    runtime = build_runtime(settings, pipeline(), faulty, partitions=3)
            traffic.stop.set()
            traffic.join(60)
            assert traffic.error is None, traffic.error
            # Windows close when event time passes them: heartbeats 4 minutes ahead (inside the 5-minute
            # screen) close every window before theirs; those windows are compared.
            heartbeat = KafkaTransport(settings.kafka, settings.producer, on_failure=print, on_error=print)
            encoder = Encoder(clock_ms=now_ms)
            late = now_ms() + 240_000
            cutoff = late - late % 60_000 - 120_000  # windows surely closed by the heartbeats
            for n in range(40):
                raw = encoder.prediction(
                    "credit",
                    "3",
                    f"tick-{n}",
                    1.0,
                    None,
                    1,
                    0.5,
                    "production",
                    "ok",
                    None,
                    {"gender": "F"},
                    None,
                    late + n,
                    None,
                )
                heartbeat.send(settings.topics.predictions, raw, f"tick-{n}".encode())
                traffic.good.append(raw)
            assert heartbeat.close(30.0) == 0
            deadline = time.monotonic() + 300
            clean = pipeline()
            outputs = [clean.process(sorted_by_time(traffic.good)), clean.flush()]
            expected = before(final_state(outputs)[0], cutoff)
            caught_up = settled(runtime, 5.0)
            while not (caught_up() and done(store, expected, cutoff) and len(receiver.requests) >= 2):
                if time.monotonic() > deadline:
                    have = before(credit_rows(store), cutoff).keys()
                    pytest.fail(
                        f"the worker did not catch up in 5 minutes: settled {caught_up()}, "
                        f"{len(expected.keys() - have)} of {len(expected)} rows missing, "
                        f"{len(receiver.requests)} notifications"
                    )
                runtime.step()
        finally:
            runtime.close()
        same(before(credit_rows(store), cutoff), expected)
        statuses = [s for (s,) in store.query("SELECT status FROM {db}.alerts FINAL ORDER BY window_start")]
        assert statuses == ["firing", "resolved"]
        delivered = [json.loads(body)["status"] for *_, body in receiver.requests]
        assert sorted(set(delivered)) == ["firing", "resolved"]
        dead = store.count("dead_letters")
        assert dead >= traffic.bad + traffic.hostile * 51  # bad bytes, invented models, the future events
        steady = [kb for at, _, kb in memory if at >= total_s / 3]
        figures = {
            "minutes": MINUTES,
            "good_events": len(traffic.good),
            "dead_letters": dead,
            "kills": kills,
            "clickhouse_inserts": flaky.inserts,
            "clickhouse_refused": flaky.refused,
            "receiver_calls": len(receiver.attempts),
            "receiver_failed": sum(status >= 500 for *_, status in receiver.attempts),
            "notifications_delivered": len(receiver.requests),
            "samples (s, process RSS MB with embedded ClickHouse, worker state KB)": memory,
        }
        Path("soak-figures.json").write_text(json.dumps(figures, indent=1))
        assert kills >= 1 and flaky.refused >= 1 and figures["receiver_failed"] >= 1
        if len(steady) >= 4:  # flat: the worker's state in the last third no larger than before by a quarter
            half = len(steady) // 2
            assert max(steady[half:]) <= 1.25 * max(steady[:half]), memory


def sorted_by_time(raws: list[bytes]) -> list[bytes]:
    """The good events in event-time order (the worker reads each partition in order; windows merge exactly)."""
    return sorted(raws, key=lambda r: int(r.split(b'"timestamp":')[1].split(b",")[0].split(b"}")[0]))


def before(rows: dict[Any, Any], cutoff: int) -> dict[Any, Any]:
    """The rows of windows starting before ``cutoff`` (identity: model, version, variant, window, start, ...)."""
    return {identity: values for identity, values in rows.items() if identity[4] < cutoff}


def done(store: Store, expected: dict[Any, Any], cutoff: int) -> bool:
    return before(credit_rows(store), cutoff).keys() >= expected.keys()
