"""``streamwatch demo``: a simulated inference service publishing through the SDK.

It starts a local broker, serves a credit-risk model (two versions, one of
them a canary) at compressed event time, sends delayed labels for half of the
requests, then reads every topic back and checks each event against the
contract and that each label shares its prediction's partition.

Later issues extend it with the workers, ClickHouse, alerts and a report.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .errors import ContractError
from .events import LabelEvent, PredictionEvent, parse_event
from .kafka import create_topics, read_topics
from .localbroker import LocalKafka
from .producer import Producer, ProducerStats
from .settings import Settings, load_settings

__all__ = ["CreditRiskService", "DemoResult", "run_demo"]

MODEL = "credit-risk"
PRODUCTION, CANARY = "3.1.0", "3.2.0-rc1"


class CreditRiskService:
    """A toy credit-risk model behind an inference endpoint, instrumented with the SDK."""

    def __init__(self, monitor: Producer, seed: int = 7) -> None:
        self.monitor = monitor
        self.rng = random.Random(seed)

    def applicant(self) -> tuple[dict[str, object], dict[str, str]]:
        rng = self.rng
        region = rng.choice(["north", "south", "east", "west"])
        features: dict[str, object] = {
            "age": rng.randint(18, 80),
            "income": round(rng.lognormvariate(10.8, 0.5), 2),
            "debt_ratio": round(rng.betavariate(2, 5), 4),
            "credit_lines": rng.randint(0, 12),
            "months_employed": None if rng.random() < 0.03 else rng.randint(0, 480),
            "employment": rng.choice(["salaried", "self-employed", "unemployed", "retired"]),
            "region": region,
            "has_mortgage": rng.random() < 0.35,
        }
        return features, {"gender": rng.choice(["F", "M"]), "region": region}

    def predict(self, features: dict[str, object]) -> float:
        z = -1.2 + 3.0 * float(features["debt_ratio"]) - 0.00001 * float(features["income"])  # type: ignore[arg-type]
        z += 0.4 if features["employment"] == "unemployed" else 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def serve(self, at: datetime) -> tuple[str, float]:
        """Handle one request at event time ``at``; return its request id and score."""
        features, segments = self.applicant()
        canary = self.rng.random() < 0.1
        version, variant = (CANARY, "canary") if canary else (PRODUCTION, "production")
        latency = self.rng.lognormvariate(math.log(40 if canary else 25), 0.4)
        if self.rng.random() < 0.01:
            rid = self.monitor.log_prediction(
                model_version=version,
                variant=variant,
                features=features,
                segments=segments,
                latency_ms=latency,
                status="error",
                error=TimeoutError("feature store timed out"),
                timestamp=at,
            )
            return rid, math.nan
        score = self.predict(features)
        rid = self.monitor.log_prediction(
            model_version=version,
            variant=variant,
            features=features,
            segments=segments,
            prediction=int(score >= 0.5),
            score=round(score, 6),
            latency_ms=round(latency, 3),
            timestamp=at,
            metadata={"host": f"pod-{self.rng.randint(1, 4)}"},
        )
        return rid, score


@dataclass
class DemoResult:
    produced: dict[str, int]
    consumed: dict[str, int] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    labels_off_partition: int = 0
    stats: ProducerStats | None = None
    sample: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.invalid
            and self.labels_off_partition == 0
            and self.consumed == self.produced
            and self.stats is not None
            and self.stats.dropped == 0
        )


def run_demo(requests: int = 2000, *, partitions: int = 3, settings: Settings | None = None) -> DemoResult:
    """Run the scenario against ``settings.kafka`` (a local broker is started when not given)."""
    if settings is None:
        with LocalKafka() as broker:
            return run_demo(
                requests,
                partitions=partitions,
                settings=load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}),
            )
    topics = settings.topics
    create_topics(settings.kafka, [topics.predictions, topics.features, topics.labels], partitions=partitions)
    produced = Counter({"prediction": 0, "feature": 0, "label": 0})
    rng = random.Random(11)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    pending_labels: list[tuple[datetime, str, int]] = []
    with Producer(settings=settings, model=MODEL, model_version=PRODUCTION, strict=True) as monitor:
        service = CreditRiskService(monitor)
        for i in range(requests):
            at = start + timedelta(seconds=3600 * i / requests)
            request_id, score = service.serve(at)
            produced["prediction"] += 1
            if i % 5 == 0:  # a feature pipeline logs some features on its own
                monitor.log_features(
                    features={"bureau_score": rng.randint(300, 850)}, request_id=request_id, timestamp=at
                )
                produced["feature"] += 1
            if not math.isnan(score) and rng.random() < 0.5:  # ground truth arrives for half, days later
                pending_labels.append((at + timedelta(days=rng.randint(1, 30)), request_id, int(rng.random() < score)))
        for at, request_id, label in sorted(pending_labels):
            monitor.log_label(request_id=request_id, label=label, timestamp=at)
            produced["label"] += 1
        monitor.flush(30)
        stats = monitor.stats()
    messages = read_topics(
        settings.kafka, [topics.predictions, topics.features, topics.labels], expect=sum(produced.values())
    )
    result = DemoResult(produced=dict(produced), stats=stats)
    consumed: Counter[str] = Counter({"prediction": 0, "feature": 0, "label": 0})
    prediction_partition: dict[str, int] = {}
    labels: list[tuple[str, int]] = []
    for message in messages:
        try:
            event = parse_event(message.value)
        except ContractError as exc:
            result.invalid.append(f"{message.topic}[{message.partition}]@{message.offset}: {exc}")
            continue
        consumed[event.type] += 1
        if isinstance(event, PredictionEvent):
            prediction_partition[event.request_id] = message.partition
            if not result.sample and event.status == "ok":
                result.sample = message.value.decode()
        elif isinstance(event, LabelEvent):
            labels.append((event.request_id, message.partition))
    result.consumed = dict(consumed)
    result.labels_off_partition = sum(1 for rid, part in labels if prediction_partition.get(rid) != part)
    return result
