"""How an inference service reports to streamwatch: a complete, runnable example.

    python examples/inference_service.py --bootstrap-servers 127.0.0.1:9092 --requests 100

The pattern: take (or make) a request id, time the model call, log the
prediction whether the call succeeded or failed, and log the label when the
ground truth arrives, with the same request id. None of these calls can block
or raise into the request path.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Mapping

import streamwatch


def score(features: Mapping[str, object]) -> float:
    """Stands in for a real model."""
    if features["income"] is None:
        raise ValueError("income is required")
    z = -1.0 + 2.5 * float(features["debt_ratio"]) - 0.00002 * float(features["income"])  # type: ignore[arg-type]
    return 1 / (1 + math.exp(-z))


def handle(monitor: streamwatch.Producer, headers: Mapping[str, str], features: Mapping[str, object]) -> str:
    """One request: the service's own work, plus three lines for monitoring."""
    request_id = streamwatch.request_id_from_headers(headers)  # reuse the caller's id when it sent one
    started = time.perf_counter()
    try:
        probability = score(features)
    except ValueError as exc:
        monitor.log_prediction(
            request_id=request_id,
            features=features,
            status="error",
            error=exc,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        return request_id
    monitor.log_prediction(
        request_id=request_id,
        features=features,
        prediction=int(probability >= 0.5),
        score=probability,
        latency_ms=(time.perf_counter() - started) * 1000,
        segments={"region": str(features["region"])},
    )
    return request_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(1)
    with streamwatch.Producer(args.bootstrap_servers, model="credit-risk", model_version="3.1.0") as monitor:
        served = []
        for i in range(args.requests):
            features = {
                "income": None if i % 50 == 0 else rng.uniform(2e4, 2e5),
                "debt_ratio": rng.random(),
                "region": rng.choice(["north", "south"]),
            }
            served.append(handle(monitor, {"X-Request-ID": f"req-{i}"}, features))
        # Later, when the outcome is known (a repayment, a chargeback...):
        for request_id in served[::2]:
            monitor.log_label(request_id=request_id, label=rng.random() < 0.3)
    stats = monitor.stats()
    print(f"delivered {stats.delivered}, dropped {stats.dropped}")


if __name__ == "__main__":
    main()
