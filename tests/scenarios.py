"""Synthetic traffic of one credit model, minute by minute, with one thing going wrong on purpose.

Every minute has ``per_minute`` production predictions drawn like the
reference profile of ``tests.test_pipeline.profile()`` (income, age, region,
a uniform score), with a gender slice, a label for each (predictions 90%
right), and a canary
twin (version 4) for each that answers alike. A scenario changes one thing:

- ``drift_minutes``: income shifts by 2 standard deviations;
- ``biased_minutes``: gender F's negatives are predicted positive half the time (its FPR rises to ~0.5);
- ``slow_canary_minutes``: the canary answers in 600 to 1,000 ms.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from tests.pipeline.test_pipeline import START


def traffic(
    minutes: int,
    per_minute: int = 400,
    drift_minutes: Collection[int] = (),
    biased_minutes: Collection[int] = (),
    slow_canary_minutes: Collection[int] = (),
    seed: int = 7,
) -> list[bytes]:
    rng = np.random.default_rng(seed)
    encoder = Encoder(clock_ms=now_ms)
    raws: list[bytes] = []
    for minute in range(minutes):
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            request = f"m{minute:02d}-{i:04d}"
            gender = "FM"[i % 2]
            score = float(rng.random())  # uniform, as in the reference profile
            predicted = int(score > 0.5)
            truth = predicted if rng.random() < 0.9 else 1 - predicted
            if minute in biased_minutes and gender == "F" and truth == 0 and rng.random() < 0.5:
                predicted, score = 1, 0.5 + score / 2
            features = {
                "income": float(rng.normal(50 + (20 if minute in drift_minutes else 0), 10)),
                "age": int(rng.integers(18, 80)),
                "region": str(rng.choice(["north", "south"])),
            }
            latency = float(rng.lognormal(3, 0.5))
            segments = {"gender": gender}
            raws.append(
                encoder.prediction(
                    "credit",
                    "3",
                    request,
                    latency,
                    features,
                    predicted,
                    score,
                    "production",
                    "ok",
                    None,
                    segments,
                    None,
                    at,
                )
            )
            canary_latency = float(rng.uniform(600, 1000)) if minute in slow_canary_minutes else latency
            raws.append(
                encoder.prediction(
                    "credit",
                    "4",
                    request,
                    canary_latency,
                    features,
                    predicted,
                    score,
                    "canary",
                    "ok",
                    None,
                    segments,
                    None,
                    at + 1,
                )
            )
            raws.append(encoder.label(model="credit", request_id=request, label=truth, timestamp=at + 2))
    return raws
