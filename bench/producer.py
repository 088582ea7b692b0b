"""What the SDK costs an inference service, next to a bare confluent-kafka produce().

Both sides run in one process against the same local broker (noida-db), with
the same librdkafka settings, in alternating rounds so that machine noise hits
both alike. The baseline hands librdkafka the very bytes the SDK would have
produced (as the encoder orders the members; the SDK's fast path writes the
same members, as many bytes, in another order), already serialised; the SDK
validates, stamps, serialises and hands them over. Two more lines give scale: orjson.dumps + produce() is serialisation
alone, and pydantic validate + dump + produce() is the naive SDK that runs the
contract's model on every call.

    .venv/bin/python bench/producer.py            # about 30 s
    .venv/bin/python bench/producer.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import confluent_kafka
import orjson

from streamwatch import Producer
from streamwatch.adapters.kafka import client_config, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.contract.events import PredictionEvent

# What the SDK may cost: per call, next to a bare produce() in the same rounds, and in the worst calls.
RATIO_GOAL = 2.5
P99_GOAL_US = 20.0


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def event_kwargs(i: int) -> dict[str, object]:
    """A typical event: 20 features (15 numeric, 5 categorical), 2 segments, ~780 bytes."""
    features: dict[str, object] = {f"num_{j}": round(i * 0.37 + j * 1.618, 4) for j in range(15)}
    features.update({f"cat_{j}": f"level-{(i + j) % 7}" for j in range(5)})
    return {
        "features": features,
        "prediction": i % 2,
        "score": (i % 1000) / 1000,
        "latency_ms": 12.5 + i % 10,
        "segments": {"gender": "FM"[i % 2], "region": ["north", "south", "east", "west"][i % 4]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few thousand calls, to check the bench runs")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 2000, 2
    n = args.events

    with LocalKafka() as broker:
        settings = load_settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers},
            producer={"buffer_max_messages": 2_000_000, "buffer_max_kbytes": 2_000_000},
        )
        topic = settings.topics.predictions
        create_topics(settings.kafka, [topic], partitions=3)

        kwargs = [event_kwargs(i) for i in range(n)]
        request_ids = [f"{i:032x}" for i in range(n)]
        encoder = Encoder(clock_ms=now_ms)
        payloads = [
            encoder.prediction(model="credit-risk", model_version="3.1.0", request_id=rid, **kw)  # type: ignore[arg-type]
            for rid, kw in zip(request_ids, kwargs, strict=True)
        ]
        bodies = [orjson.loads(p) for p in payloads]

        # The baseline gets exactly the librdkafka settings the SDK uses.
        sdk = Producer(settings=settings, model="credit-risk", model_version="3.1.0")
        conf = client_config(settings.kafka)
        conf.update(
            {
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 50,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 2_000_000,
                "queue.buffering.max.kbytes": 2_000_000,
                "delivery.report.only.error": True,
            }
        )
        bare = confluent_kafka.Producer(conf)
        produce, log = bare.produce, sdk.log_prediction

        def run_bare() -> None:
            for payload, rid in zip(payloads, request_ids, strict=True):
                produce(topic, payload, rid)

        def run_dumps() -> None:
            for body, rid in zip(bodies, request_ids, strict=True):
                produce(topic, orjson.dumps(body), rid)

        # The SDK is called the way a service calls it: explicit keywords.
        rows = [
            (rid, kw["features"], kw["prediction"], kw["score"], kw["latency_ms"], kw["segments"])
            for rid, kw in zip(request_ids, kwargs, strict=True)
        ]

        def run_sdk() -> None:
            for rid, features, prediction, score, latency, segments in rows:
                log(
                    request_id=rid,
                    features=features,
                    prediction=prediction,
                    score=score,
                    latency_ms=latency,
                    segments=segments,
                )

        def timed_calls(which: str) -> list[int]:
            out = []
            clock = time.perf_counter_ns
            if which == "bare":
                for payload, rid in zip(payloads, request_ids, strict=True):
                    t = clock()
                    produce(topic, payload, rid)
                    out.append(clock() - t)
            else:
                for rid, features, prediction, score, latency, segments in rows:
                    t = clock()
                    log(
                        request_id=rid,
                        features=features,
                        prediction=prediction,
                        score=score,
                        latency_ms=latency,
                        segments=segments,
                    )
                    out.append(clock() - t)
            return out

        def settle() -> None:
            bare.flush(60)
            sdk.flush(60)

        def run_pydantic() -> None:
            # The naive SDK: the contract's pydantic model on every call.
            for body, rid in zip(bodies, request_ids, strict=True):
                produce(topic, PredictionEvent.model_validate(body).model_dump_json().encode(), rid)

        runs: dict[str, Callable[[], None]] = {
            "bare produce()": run_bare,
            "orjson.dumps + produce()": run_dumps,
            "streamwatch log_prediction()": run_sdk,
            "pydantic validate+dump+produce()": run_pydantic,
        }
        per_call: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                settle()
                started = time.perf_counter()
                run()
                per_call[name].append((time.perf_counter() - started) / n * 1e6)
        latencies: dict[str, list[int]] = {"bare": [], "sdk": []}
        for _ in range(args.rounds):
            for which in latencies:
                settle()
                latencies[which] += timed_calls(which)
        settle()
        stats = sdk.stats()
        sdk.close()

    base = statistics.median(per_call["bare produce()"])
    print(f"\n{n:,} events x {args.rounds} rounds, ~{len(payloads[0])} bytes each, broker noida-db on 127.0.0.1\n")
    print(f"{'':32}{'µs/call (median round)':>24}{'x bare':>9}")
    for name, values in per_call.items():
        median = statistics.median(values)
        print(f"{name:32}{median:>24.2f}{median / base:>9.2f}")
    print(f"\n{'per-call time':32}{'p50 µs':>10}{'p99 µs':>10}")
    quantiles = {}
    for which, label in (("bare", "bare produce()"), ("sdk", "streamwatch log_prediction()")):
        values = sorted(latencies[which])
        quantiles[which] = (values[len(values) // 2] / 1000, values[int(len(values) * 0.99)] / 1000)
        goal = (
            f"   (goal p99 <= {P99_GOAL_US:g} µs: {verdict(quantiles[which][1] <= P99_GOAL_US)})"
            if which == "sdk"
            else ""
        )
        print(f"{label:32}{quantiles[which][0]:>10.2f}{quantiles[which][1]:>10.2f}{goal}")
    sdk_median = statistics.median(per_call["streamwatch log_prediction()"])
    ratio = sdk_median / base
    print(f"\nratio SDK / bare produce(): {ratio:.2f}x (goal <= {RATIO_GOAL:g}x: {verdict(ratio <= RATIO_GOAL)})")
    p50_ratio = quantiles["sdk"][0] / quantiles["bare"][0]
    print(f"ratio log_prediction / bare produce(), p50 per call: {p50_ratio:.2f}x")
    print(f"SDK counters: delivered {stats.delivered:,}, dropped {stats.dropped:,}")
    if stats.dropped:
        raise SystemExit("the SDK dropped events during the benchmark")


if __name__ == "__main__":
    main()
