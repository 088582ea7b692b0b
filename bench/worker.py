"""What a streamwatch worker sustains end to end, Kafka to ClickHouse, next to bare consumers.

One run, against a local noida-db broker and embedded ClickHouse (chdb), on the
same topics (3 partitions; bench/core.py's events: 20 features, 2 segments,
labels for half):

- a bare confluent-kafka ``consume(1000)`` loop that only ``orjson.loads``
  each message (the floor: goal, the worker at >= 50% of it);
- the streamwatch worker runtime: decode, validate, every metric, raw events,
  partials and checkpoints into ClickHouse, reports of complete windows;
- a plain Faust agent iterating the topic event by event (a sample: it is slow);
- the delay from producing the event that closes a window to that window's
  metric rows being queryable;
- one worker process against two in one group (each with its own chdb path:
  chdb is one process's, so this measures the consume-and-process side).

    .venv/bin/python bench/worker.py            # a few minutes
    .venv/bin/python bench/worker.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from core import make_events, reference_profile
from streamwatch.adapters.clickhouse import connect
from streamwatch.adapters.kafka import BatchConsumer, ConfirmedPublisher, KafkaTransport, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import ClickHouseSettings, KafkaSettings, load_settings
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.runtime.loop import RuntimeSettings, WorkerRuntime
from streamwatch.runtime.report_runner import ReportRunner

PARTITIONS = 3


def publish(kafka: KafkaSettings, prefix: str, raws: list[bytes]) -> None:
    # Uncompressed: Faust's aiokafka here has no lz4 codec, and every consumer reads the same bytes.
    settings = load_settings(kafka=kafka.model_dump(), producer={"compression": "none"})
    transport = KafkaTransport(kafka, settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None)
    for raw in raws:
        key = raw.split(b'"request_id":"')[1].split(b'"')[0]
        topic = f"{prefix}.labels" if raw.startswith(b'{"type":"label"') else f"{prefix}.predictions"
        while True:
            try:
                transport.send(topic, raw, key)
                break
            except BufferError:
                transport.poll(0.05)
    assert transport.close(60) == 0


def bare_consume(kafka: KafkaSettings, topics: list[str], expect: int) -> float:
    """Events/s of a consume(1000) loop that orjson.loads each message."""
    seen = 0
    consumer = BatchConsumer(kafka, f"bare-{time.time_ns()}", topics, lambda parts: {}, lambda parts: None)
    started = None
    loads = orjson.loads
    while seen < expect:
        began = time.perf_counter()
        batch = consumer.consume(1000, 0.5)
        if batch and started is None:
            started = began
        for message in batch:
            loads(message.value)
        seen += len(batch)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return seen / elapsed


def runtime_for(  # type: ignore[no-untyped-def]
    kafka: KafkaSettings, prefix: str, group: str, store, checkpoint_ms: int, raw_events: str = "all"
) -> WorkerRuntime:
    pipeline = Pipeline({("credit", "3"): reference_profile()})
    settings = load_settings(kafka=kafka.model_dump())
    rts = RuntimeSettings.from_settings(
        settings,
        group=group,
        predictions=f"{prefix}.predictions",
        features=f"{prefix}.features",
        labels=f"{prefix}.labels",
        deadletter=f"{prefix}.deadletter",
        batch_size=5000,
        checkpoint_interval_ms=checkpoint_ms,
        idle_timeout_ms=2_000,
        max_age_ms=3650 * 86_400_000,  # the synthetic events are dated November 2026
        raw_events=raw_events,
    )
    transport = ConfirmedPublisher(kafka)

    def consumer(on_assign, on_revoke):  # type: ignore[no-untyped-def]
        return BatchConsumer(kafka, group, rts.inputs, on_assign, on_revoke)

    return WorkerRuntime(
        pipeline, store, consumer, transport, rts, report_runner=ReportRunner(pipeline, store, group, PARTITIONS)
    )


def consumed(runtime: WorkerRuntime) -> float:
    return sum(runtime.metrics.events.labels(t)._value.get() for t in runtime.settings.inputs)


def worker_throughput(runtime: WorkerRuntime, expect: int) -> float:
    started = None
    while consumed(runtime) < expect:
        began = time.perf_counter()
        if runtime.step() and started is None:
            started = began
    return expect / (time.perf_counter() - (started or time.perf_counter()))


def window_delay(kafka: KafkaSettings, prefix: str, runtime: WorkerRuntime, store, after_ms: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds from producing the event that closes a window to the window's rows being queryable."""
    start = after_ms + 3_600_000 - (after_ms + 3_600_000) % 60_000
    window = make_events(300, seed=9, start_ms=start)  # one minute's worth (20 ms apart), labels included
    publish(kafka, prefix, window)
    before = consumed(runtime) + len(window)
    while consumed(runtime) < before:
        runtime.step()
    closing = make_events(PARTITIONS * 20, seed=10, start_ms=start + 180_000)  # on every partition
    closing = [raw.replace(b'"request_id":"r', b'"request_id":"close-') for raw in closing]
    t0 = time.perf_counter()
    publish(kafka, prefix, closing)
    query = (
        "SELECT count() FROM {db}.metrics FINAL WHERE metric = 'requests' AND window = 'tumbling' "
        "AND toUnixTimestamp64Milli(window_start) = {start:Int64}"
    )
    while store.query(query, {"start": start})[0][0] == 0:
        runtime.step()
    return time.perf_counter() - t0


FAUST_AGENT = """
import sys, time, faust
topic_name, expect, port = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = faust.App(f"bench-faust-{time.time_ns()}", broker=f"kafka://{sys.argv[1]}", web_port=port,
                store="memory://", autodiscover=False, topic_partitions=3,
                broker_session_timeout=6.0, broker_rebalance_timeout=6.0)
topic = app.topic(topic_name, value_serializer="raw")
state = {"n": 0, "t0": None}

@app.agent(topic)
async def count(stream):
    async for value in stream:
        state["t0"] = state["t0"] or time.perf_counter()
        state["n"] += 1
        if state["n"] >= expect:
            print(f"RATE {state['n'] / (time.perf_counter() - state['t0']):.1f}", flush=True)
            import os, signal
            os.kill(os.getpid(), signal.SIGTERM)

faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
"""


def faust_agent(bootstrap: str, topic: str, expect: int) -> float:
    from streamwatch.adapters.localbroker import free_port

    out = subprocess.run(
        [sys.executable, "-c", FAUST_AGENT, bootstrap, topic, str(expect), str(free_port())],
        capture_output=True,
        text=True,
        timeout=600,
    )
    rates = re.findall(r"RATE ([0-9.]+)", out.stdout + out.stderr)  # Faust logs what agents print
    if not rates:
        raise RuntimeError(f"faust agent failed: {out.stdout[-1000:]} {out.stderr[-2000:]}")
    return float(rates[-1])


SCALE_WORKER = """
import sys, time, json
sys.path.insert(0, sys.argv[6])
from worker import runtime_for, consumed
from streamwatch.adapters.clickhouse import connect
from streamwatch.config.settings import ClickHouseSettings, KafkaSettings
kafka = KafkaSettings(bootstrap_servers=sys.argv[1])
store = connect(ClickHouseSettings(dsn="chdb://" + sys.argv[4]))
store.migrate(0)
runtime = runtime_for(kafka, sys.argv[2], sys.argv[3], store, 5000)
first = last = None
deadline = time.time() + 300
while time.time() < deadline:
    began = time.time()
    n = runtime.step()
    now = time.time()
    if n:
        first = first or began
        last = now
    elif first and now - last > float(sys.argv[5]):
        break
print(json.dumps({"events": consumed(runtime), "first": first, "last": last}), flush=True)
"""


def scaling(kafka: KafkaSettings, raws: list[bytes], processes: int, quiet_s: float) -> float:
    """Events/s of ``processes`` worker processes in one group, started before the traffic arrives."""
    import json

    prefix = f"scale{processes}"
    create_topics(kafka, [f"{prefix}.{t}" for t in ("predictions", "features", "labels")], partitions=PARTITIONS)
    group = f"{prefix}-{time.time_ns()}"
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SCALE_WORKER,
                    kafka.bootstrap_servers,
                    prefix,
                    group,
                    f"{tmp}/ch{i}",
                    str(quiet_s),
                    str(Path(__file__).parent),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        time.sleep(8)  # both have joined the group and split the partitions
        publish(kafka, prefix, raws)
        results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    active = [r for r in results if r["first"]]
    events = sum(r["events"] for r in results)
    return events / (max(r["last"] for r in active) - min(r["first"] for r in active))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="predictions (plus labels for half)")
    parser.add_argument("--faust-sample", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.faust_sample = 3_000, 1_000
    raws = make_events(args.events)
    total = len(raws)
    with LocalKafka() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        prefix = "bench"
        names = [f"{prefix}.{t}" for t in ("predictions", "features", "labels")]
        create_topics(kafka, names, partitions=PARTITIONS)
        create_topics(kafka, [f"{prefix}.deadletter"], partitions=1)
        publish(kafka, prefix, raws)
        bare = bare_consume(kafka, names, total)
        store = connect(ClickHouseSettings(dsn=f"chdb://{tmp}/clickhouse"))
        store.migrate(raw_ttl_days=0)
        runtime = runtime_for(kafka, prefix, "bench-worker", store, 5_000)
        worker = worker_throughput(runtime, total)
        end_ms = max(int(r.split(b'"timestamp":')[1].split(b",")[0].split(b"}")[0]) for r in raws)
        delay = window_delay(kafka, prefix, runtime, store, end_ms)
        stored = store.count("predictions")
        runtime.close()
        # The same worker storing no raw events (clickhouse.raw_events: none): what their inserts cost.
        unstored = runtime_for(kafka, prefix, "bench-worker-no-raw", store, 5_000, raw_events="none")
        no_raw = worker_throughput(unstored, total)
        unstored.close()
        agent = faust_agent(broker.bootstrap_servers, names[0], min(args.faust_sample, args.events))
        quiet = 3.0 if args.quick else 5.0
        one = scaling(kafka, raws, 1, quiet)
        two = scaling(kafka, raws, 2, quiet)
    print(
        f"\n{total:,} messages ({args.events:,} predictions, labels for half), {PARTITIONS} partitions, "
        f"noida-db and chdb on this machine ({os.cpu_count()} cores)\n"
    )
    print(f"{'':44}{'events/s':>12}{'x bare':>9}")
    for name, rate in (
        ("bare consume(1000) + orjson.loads", bare),
        ("streamwatch worker, Kafka to ClickHouse", worker),
        ("  the same, raw_events: none", no_raw),
        ("Faust agent, event by event", agent),
    ):
        print(f"{name:44}{rate:>12,.0f}{rate / bare:>9.2f}")
    print(f"\nworker / bare consumer: {worker / bare:.0%} (goal >= 50%); worker / Faust agent: {worker / agent:.1f}x")
    print(f"window closed -> its rows queryable: {delay:.2f} s (checkpoints every 5 s, reports every 1 s)")
    print(f"1 worker process: {one:,.0f} events/s; 2 in one group: {two:,.0f} events/s ({two / one:.2f}x)")
    print(f"predictions stored: {stored:,}")


if __name__ == "__main__":
    main()
