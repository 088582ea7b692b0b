"""Alert latency: from the event that closes the offending window to the webhook request arriving.

One run, on this machine: a local noida-db broker, embedded ClickHouse (chdb),
a streamwatch worker assembled exactly as ``streamwatch worker`` assembles it
(``service.build_runtime``: rules, router, outbox topic, dispatcher thread),
and a local HTTP receiver behind a signed ``webhook`` channel.

Each trial publishes one 1-second window of predictions (every other one with
a drifted feature), lets the worker consume it, then publishes the first
event of the next window, which closes it, and times how long until the
webhook receives the firing (or resolved) notification. Next to it, the bare
floor: a Kafka produce-to-consume round trip plus one HTTP POST to the same
receiver, measured the same way.

    .venv/bin/python bench/alerts.py            # 40 trials
    .venv/bin/python bench/alerts.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from core import make_events, reference_profile
from streamwatch.adapters.clickhouse import connect
from streamwatch.adapters.kafka import BatchConsumer, KafkaTransport, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings, load_settings
from streamwatch.notify.payloads import verify_webhook
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.runtime.wiring import build_runtime, init_deployment

WINDOW_MS = 1_000
SECRET = "bench-signing-secret"


class Receiver(http.server.ThreadingHTTPServer):
    """Records when each POST arrived (perf_counter) and whether its signature verified."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bool, bytes]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.perf_counter()
        ok = verify_webhook(
            SECRET,
            body,
            self.headers.get("X-Streamwatch-Timestamp", ""),
            self.headers.get("X-Streamwatch-Signature", ""),
            time.time(),
        )
        self.send_response(200)
        self.end_headers()
        server: Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.arrivals.append((arrived, ok, body))

    def log_message(self, *args: object) -> None:
        pass


def settings_for(bootstrap: str, receiver: Receiver, tmp: str, report_ms: int) -> Settings:
    return load_settings(
        kafka={"bootstrap_servers": bootstrap},
        producer={"linger_ms": 0},
        topics={"partitions": 1},
        clickhouse={"dsn": f"chdb://{tmp}/clickhouse", "raw_ttl_days": 0},
        windows={"size_ms": WINDOW_MS, "allowed_lateness_ms": 0, "rolling_windows": 0},
        worker={
            "group": "bench-alerts",
            "instance_id": "bench-alerts-0",
            "report_interval_ms": report_ms,
            "max_age_ms": 3650 * 86_400_000,  # the maximum: the test streams are dated November 2026
        },
        rules=[
            {
                "name": "num-0-drift",
                "kind": "drift",
                "feature": "num_0",
                "when": {"metric": "wasserstein", "op": ">", "threshold": 0.5},
                "for": 1,
                "channels": ["hook"],
            }
        ],
        channels=[{"name": "hook", "type": "webhook", "url": receiver.url, "signing_secret": SECRET}],
        alerting={"default_rules": False, "group_wait": "0s", "group_interval": "0s"},
    )


def window_events(k: int, start_ms: int, drifted: bool) -> list[bytes]:
    raws = make_events(100, seed=k, start_ms=start_ms)  # 20 ms apart: 2 s of events...
    raws = [r for r in raws if r.startswith(b'{"type":"prediction"') and _stamp(r) < start_ms + WINDOW_MS]
    raws = [raw.replace(b'"request_id":"r', f'"request_id":"w{k}-'.encode()) for raw in raws]
    if drifted:
        raws = [_shift(raw) for raw in raws]
    return raws


def _stamp(raw: bytes) -> int:
    return int(raw.split(b'"timestamp":')[1].split(b",")[0].split(b"}")[0])


def _shift(raw: bytes) -> bytes:
    head, tail = raw.split(b'"num_0":', 1)
    value, rest = tail.split(b",", 1)
    return head + b'"num_0":' + str(float(value) + 3.0).encode() + b"," + rest


def publish(transport: KafkaTransport, topic: str, raws: list[bytes]) -> None:
    for raw in raws:
        transport.send(topic, raw, raw.split(b'"request_id":"')[1].split(b'"')[0])
    transport.flush(10.0)


def alert_latencies(settings: Settings, receiver: Receiver, trials: int) -> list[float]:
    pipeline = pipeline_from_settings(settings, {("credit", "3"): reference_profile()})
    init_deployment(settings)
    store = connect(settings.clickhouse)
    runtime = build_runtime(settings, pipeline, store, partitions=1)
    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=print)
    topic = settings.topics.predictions
    base = (now_ms() // WINDOW_MS + 1) * WINDOW_MS
    latencies = []
    try:
        for k in range(trials + 1):
            start = base + k * WINDOW_MS
            events = window_events(k, start, drifted=k % 2 == 0)
            closing, rest = events[0], events[1:]
            if k > 0:
                # The first event of this window closes the previous one: time it to the webhook.
                expected = receiver.count() + 1
                sent = time.perf_counter()
                publish(transport, topic, [closing])
                deadline = time.monotonic() + 30
                while receiver.count() < expected and time.monotonic() < deadline:
                    runtime.step()
                if receiver.count() < expected:
                    raise RuntimeError(f"trial {k}: no notification within 30 s")
                latencies.append(receiver.arrivals[expected - 1][0] - sent)
            else:
                publish(transport, topic, [closing])
            publish(transport, topic, rest)
            consumed = runtime.metrics.events.labels(topic)._value.get
            target = consumed() + len(rest) + (k == 0)
            while consumed() < target:
                runtime.step()
    finally:
        runtime.close()
        transport.close(5.0)
    return latencies


def bare_round_trip(settings: Settings, receiver: Receiver, trials: int) -> list[float]:
    """Produce one message, consume it, POST it to the receiver: the floor under any alert path."""
    topic = "bench-bare-roundtrip"
    create_topics(settings.kafka, [topic], partitions=1)
    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=print)
    consumer = BatchConsumer(settings.kafka, f"bare-{time.time_ns()}", [topic], lambda p: {}, lambda p: None)
    consumer.consume(1, 3.0)  # joined and assigned
    out = []
    with httpx.Client() as client:
        for i in range(trials):
            expected = receiver.count() + 1
            sent = time.perf_counter()
            transport.send(topic, f'{{"n":{i}}}'.encode())
            transport.flush(5.0)
            while not (batch := consumer.consume(1, 0.05)):
                pass
            client.post(receiver.url, content=batch[0].value)
            while receiver.count() < expected:
                time.sleep(0.0005)
            out.append(receiver.arrivals[expected - 1][0] - sent)
    consumer.close()
    transport.close(5.0)
    return out


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--report-interval-ms", type=int, default=None, help="default: the worker's default")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials = 4
    report_ms = args.report_interval_ms or Settings().worker.report_interval_ms
    with LocalKafka() as broker, tempfile.TemporaryDirectory() as tmp:
        receiver = Receiver()
        settings = settings_for(broker.bootstrap_servers, receiver, tmp, report_ms)
        alerts = alert_latencies(settings, receiver, args.trials)
        verified = all(ok for _, ok, _ in receiver.arrivals)
        floor = bare_round_trip(settings, receiver, args.trials)
        receiver.shutdown()
    print(
        f"\n{args.trials} trials, 1 s windows, reports every {report_ms} ms and when a window closes, "
        f"on this machine ({os.cpu_count()} cores)\n"
    )
    print(f"{'':52}{'p50 ms':>9}{'p99 ms':>9}")
    for name, values in (
        ("closing event -> webhook received (streamwatch)", alerts),
        ("produce -> consume -> POST (bare floor)", floor),
    ):
        print(f"{name:52}{quantile(values, 0.5) * 1000:>9.0f}{quantile(values, 0.99) * 1000:>9.0f}")
    print(
        f"\nstreamwatch p50 / floor p50: {quantile(alerts, 0.5) / quantile(floor, 0.5):.0f}x; "
        f"goal p99 <= 1000 ms: {'met' if quantile(alerts, 0.99) <= 1.0 else 'not met'}; "
        f"every webhook signature verified: {verified}"
    )


if __name__ == "__main__":
    main()
