"""The demo's credit-risk service and its three incidents, as a deterministic stream of events.

A toy credit-risk model (production version ``3.1.0``, canary ``3.2.0-rc1``
on a tenth of the traffic) scores applicants minute by minute of *event*
time. Ground truth (did the applicant default?) arrives 20 to 100 seconds
after each prediction. Three incidents are injected at known minutes:

- **covariate drift**: applicants' ``debt_ratio`` shifts upwards, and with it the embedding of their
  application's free text (``purpose``, 384 numbers, as a sentence encoder gives), which the model takes too;
- **fairness regression**: the production model scores applicants with
  ``gender=F`` higher than their risk, so its false-positive rate for them rises;
- **latency regression**: the canary answers in 0.6 to 1.2 s (its SLO is 300 ms).

Nothing here does I/O or reads a clock: the demo, the ``traffic`` command,
the dashboards' tests and the report's tests all replay the same events.

>>> scenario = DemoScenario(minutes=3, per_minute=50)
>>> kinds = [event["type"] for event in scenario.minute(0)]
>>> kinds.count("prediction"), kinds.count("label") > 0
(50, True)
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

__all__ = ["CANARY", "EMBEDDING", "EMBEDDING_DIMS", "MODEL", "PRODUCTION", "DemoScenario", "Incident"]

MODEL = "credit-risk"
PRODUCTION, CANARY = "3.1.0", "3.2.0-rc1"
REGIONS = ("north", "south", "east", "west")
EMPLOYMENT = ("salaried", "self-employed", "unemployed", "retired")
#: The embedding of the application's free text: what a sentence encoder such as all-MiniLM-L6-v2 gives.
EMBEDDING, EMBEDDING_DIMS = "purpose", 384


@dataclass(frozen=True)
class Incident:
    """An injected problem: what, when (event-time minutes ``[start, end)``), and what should catch it."""

    name: str
    start: int
    end: int
    description: str
    kind: str  # the alert kind expected
    variant: str
    detail: str  # the feature or slice concerned


class DemoScenario:
    """Events of the demo, minute by minute of event time from ``start_ms``.

    Parameters
    ----------
    minutes
        Length of the scenario; incidents are placed at fixed fractions of it.
    per_minute
        Requests served per minute (a tenth go to the canary).
    start_ms
        Event time of the first minute (aligned down to a minute).
    seed
        Everything random derives from it.
    """

    def __init__(self, minutes: int = 30, per_minute: int = 400, start_ms: int = 1_795_000_000_000, seed: int = 7):
        self.minutes = minutes
        self.per_minute = per_minute
        self.start_ms = start_ms - start_ms % 60_000
        self.seed = seed
        third = max(1, minutes // 3)
        self.incidents = (
            Incident(
                "covariate drift",
                third,
                third + max(2, minutes // 5),
                "debt_ratio shifts up by 0.25",
                "drift",
                "production",
                "debt_ratio",
            ),
            # The same incident, as the application texts' embedding shows it (it moves with debt_ratio).
            Incident(
                "embedding drift",
                third,
                third + max(2, minutes // 5),
                f"the {EMBEDDING} embedding moves with debt_ratio",
                "drift",
                "production",
                EMBEDDING,
            ),
            Incident(
                "fairness regression",
                third + minutes // 6,
                third + minutes // 6 + max(3, minutes // 5),
                "gender=F scored 0.3 higher than their risk",
                "fairness",
                "production",
                "gender=F",
            ),
            Incident(
                "canary latency regression",
                2 * third,
                2 * third + max(3, minutes // 5),
                "the canary answers in 0.6 to 1.2 s",
                "slo",
                "canary",
                "latency",
            ),
        )

    def active(self, name: str, minute: int) -> bool:
        return any(i.name == name and i.start <= minute < i.end for i in self.incidents)

    def embeddings(self, applicants: list[dict[str, Any]], rng: np.random.Generator) -> np.ndarray:
        """The application texts' embeddings: their topic follows the applicant (debt ratio, employment,
        income), plus what the text says beyond it (noise), in 384 dimensions, at a sentence encoder's scale."""
        directions = np.random.default_rng(self.seed).normal(0, 1, (2 + len(EMPLOYMENT), EMBEDDING_DIMS))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        topics = np.array(
            [
                [
                    4.0 * float(a["debt_ratio"]),
                    0.5 * math.log(float(a["income"])) - 5.4,
                    *(float(a["employment"] == e) for e in EMPLOYMENT),
                ]
                for a in applicants
            ]
        ).reshape(len(applicants), -1)
        vectors = topics @ directions + rng.normal(0, 1, (len(applicants), EMBEDDING_DIMS)) * 0.05
        return vectors / 8.0

    def _applicant(self, rng: random.Random, drifted: bool) -> tuple[dict[str, Any], dict[str, str]]:
        region = rng.choice(REGIONS)
        debt = rng.betavariate(2, 5) + (0.25 if drifted else 0.0)
        features: dict[str, Any] = {
            "age": rng.randint(18, 80),
            "income": round(rng.lognormvariate(10.8, 0.5), 2),
            "debt_ratio": round(min(debt, 1.0), 4),
            "credit_lines": rng.randint(0, 12),
            "months_employed": None if rng.random() < 0.03 else rng.randint(0, 480),
            "employment": rng.choice(EMPLOYMENT),
            "region": region,
        }
        return features, {"gender": rng.choice(("F", "M")), "region": region}

    @staticmethod
    def risk(features: dict[str, Any]) -> float:
        """The true probability of default, which the production model estimates well."""
        z = -2.2 + 5.0 * float(features["debt_ratio"]) - 0.000004 * float(features["income"])
        z += 0.8 if features["employment"] == "unemployed" else 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def minute(self, minute: int) -> list[dict[str, Any]]:
        """Every event of one minute (predictions, then the labels of this minute's predictions), as dicts.

        Labels carry their own (later) timestamps; a publisher that wants them to
        arrive late holds each back until event time reaches it.
        """
        rng = random.Random(self.seed * 1_000_003 + minute)
        base = self.start_ms + minute * 60_000
        drifted = self.active("covariate drift", minute)
        biased = self.active("fairness regression", minute)
        slow_canary = self.active("canary latency regression", minute)
        predictions, labels = [], []
        applicants = []
        for i in range(self.per_minute):
            at = base + i * 60_000 // self.per_minute
            features, segments = self._applicant(rng, drifted)
            applicants.append(features)
            canary = rng.random() < 0.1
            request_id = f"req-{minute:03d}-{i:04d}"
            risk = self.risk(features)
            score = min(1.0, risk + 0.3) if biased and not canary and segments["gender"] == "F" else risk
            if canary:
                latency = rng.uniform(600, 1200) if slow_canary else rng.lognormvariate(math.log(40), 0.3)
            else:
                latency = rng.lognormvariate(math.log(25), 0.3)
            error = rng.random() < 0.002
            predictions.append(
                {
                    "type": "prediction",
                    "event_id": f"{request_id}-p",
                    "request_id": request_id,
                    "timestamp": at,
                    "model": MODEL,
                    "model_version": CANARY if canary else PRODUCTION,
                    "variant": "canary" if canary else "production",
                    "features": features,
                    "segments": segments,
                    "latency_ms": round(latency, 3),
                    **(
                        {"status": "error", "error": "feature store timeout"}
                        if error
                        else {"prediction": int(score >= 0.5), "score": round(score, 6)}
                    ),
                }
            )
            if not error:
                delay = rng.randint(20_000, 100_000)
                labels.append(
                    {
                        "type": "label",
                        "event_id": f"{request_id}-l",
                        "request_id": request_id,
                        "timestamp": at + delay,
                        "model": MODEL,
                        "label": int(rng.random() < risk),
                    }
                )
        vectors = self.embeddings(applicants, np.random.default_rng([self.seed, minute]))
        for prediction, vector in zip(predictions, np.round(vectors, 4).tolist(), strict=True):
            prediction["schema_version"] = 2
            prediction["embeddings"] = {EMBEDDING: vector}
        return predictions + labels

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event in event-time order (labels where their time falls)."""
        pending: list[dict[str, Any]] = []
        for minute in range(self.minutes):
            batch = self.minute(minute)
            end = self.start_ms + (minute + 1) * 60_000
            due = sorted(pending + batch, key=lambda e: e["timestamp"])
            yield from (e for e in due if e["timestamp"] < end)
            pending = [e for e in due if e["timestamp"] >= end]
        yield from sorted(pending, key=lambda e: e["timestamp"])

    def reference_profiles(self, rows: int = 20_000) -> dict[tuple[str, str], ReferenceProfile]:
        """Profiles of the training data both versions were fitted on (the scenario before any incident)."""
        rng = random.Random(self.seed)
        applicants = [self._applicant(rng, drifted=False) for _ in range(rows)]
        columns: dict[str, np.ndarray] = {}
        for name in applicants[0][0]:
            values = [a[name] for a, _ in applicants]
            numeric = all(v is None or isinstance(v, int | float) for v in values)
            columns[name] = (
                np.array([math.nan if v is None else float(v) for v in values])
                if numeric
                else np.array(values, dtype=object)
            )
        risks = np.array([self.risk(a) for a, _ in applicants])
        columns["score"] = risks
        columns["label"] = (np.array([rng.random() for _ in applicants]) < risks).astype(int)
        embedded = {EMBEDDING: self.embeddings([a for a, _ in applicants], np.random.default_rng([self.seed, 10**6]))}
        profiles = {}
        for version in (PRODUCTION, CANARY):
            lineage = Lineage(
                model=MODEL,
                model_version=version,
                data_uri=f"s3://ml-data/credit-risk/train-{version}.parquet",
                rows=rows,
                content_sha256=f"{self.seed:064x}",
                created_at="2026-11-01T00:00:00Z",
                streamwatch_version="demo",
                git_sha="4f2c1e9",
            )
            profiles[MODEL, version] = build_profile(
                columns, lineage=lineage, score_column="score", label_column="label", embeddings=embedded
            )
        return profiles
