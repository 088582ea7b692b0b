"""Embedding drift through the pipeline, from encoded events to rules: a cluster of inputs that moves is
caught by the mean vector's distance, a spread that grows around the same mean by the projections' drift,
stationary streams of several rates and dimensions stay quiet, and partitions merge to the whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.alerts.rules import RuleEngine
from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.pipeline.state import dumps, loads
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile
from tests.pipeline.test_pipeline import START

LINEAGE = Lineage(
    model="search",
    model_version="1",
    data_uri="train.parquet",
    rows=5_000,
    content_sha256="e" * 64,
    created_at="2026-11-23T00:00:00Z",
    streamwatch_version="0.1.0",
)
RULES = ("embedding-drift", "feature-drift", "embedding-wrong-length")


class Space:
    """Vectors from a mixture of four clusters with unequal, anisotropic spreads: not a Gaussian."""

    def __init__(self, dims: int, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.dims = dims
        self.centres = rng.normal(0, 1, (4, dims))
        self.scales = np.geomspace(1.0, 0.05, dims) * rng.uniform(0.5, 1.5, (4, 1))
        self.weights = np.array([0.4, 0.3, 0.2, 0.1])

    def draw(
        self, rng: np.random.Generator, n: int, weights: np.ndarray | None = None, spread: float = 1.0
    ) -> np.ndarray:
        cluster = rng.choice(4, n, p=self.weights if weights is None else weights)
        return self.centres[cluster] + spread * rng.normal(0, 1, (n, self.dims)) * self.scales[cluster]


def profile_of(space: Space) -> ReferenceProfile:
    rng = np.random.default_rng(6)
    return build_profile({"x": rng.normal(0, 1, 5_000)}, lineage=LINEAGE, embeddings={"text": space.draw(rng, 5_000)})


def stream(
    space: Space, minutes: int, per_minute: int, change: str | None = None, seed: int = 7, wrong_at: int | None = None
) -> list[bytes]:
    """``change`` from minute 15: "move" (the mixture's weight moves to the last cluster) or "spread"."""
    rng = np.random.default_rng(seed)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for minute in range(minutes):
        changed = change is not None and minute >= 15
        weights = np.array([0.25, 0.25, 0.2, 0.3]) if changed and change == "move" else None
        vectors = space.draw(rng, per_minute, weights, spread=1.6 if changed and change == "spread" else 1.0)
        x = rng.normal(0, 1, per_minute)
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            vector = vectors[i][:-1] if minute == wrong_at and i < 3 else vectors[i]
            raws.append(
                encoder.prediction(
                    "search", "1", f"s{minute}-{i}", 10.0, {"x": float(x[i])}, 1, None,
                    timestamp=at, embeddings={"text": vector},
                )
            )  # fmt: skip
    return raws


def run(profile: ReferenceProfile, raws: list[bytes], per_minute: int) -> dict[str, Any]:
    pipeline = Pipeline({("search", "1"): profile}, rolling_windows=0, calibrate_for="auto")
    engine = RuleEngine([r for r in DEFAULT_RULES if r.name in RULES])
    rows, fired = [], []
    for start in range(0, len(raws), per_minute):
        out = pipeline.process(raws[start : start + per_minute])
        rows += out.rows
        fired += [
            (t.rule, t.feature, (t.window_start_ms - START) // 60_000)
            for t in engine.evaluate(out.rows, out.findings)
            if t.status == "firing"
        ]
    return {"rows": rows, "fired": fired}


SPACE = Space(32)
PROFILE = profile_of(SPACE)


def test_the_profile_holds_the_embedding() -> None:
    text = PROFILE.embeddings["text"]
    assert (text.dims, text.rows, len(text.components), len(text.projections)) == (32, 5_000, 8, 8)


def test_a_cluster_that_moves_is_caught_by_the_mean_vector() -> None:
    found = run(PROFILE, stream(SPACE, 25, 200, change="move"), 200)
    distance = {(r.window_start_ms - START) // 60_000: r for r in found["rows"] if r.metric == "embedding_euclidean"}
    assert all(distance[m].value <= distance[m].threshold for m in range(15))
    assert all(distance[m].value > distance[m].threshold for m in range(15, 24))
    cosine = {(r.window_start_ms - START) // 60_000: r for r in found["rows"] if r.metric == "embedding_cosine"}
    assert all(cosine[m].value > cosine[m].threshold for m in range(15, 24))  # the direction moved too
    fired = [(rule, minute) for rule, feature, minute in found["fired"] if rule == "embedding-drift"]
    assert fired and fired[0][1] == 16  # two windows running
    assert all(minute >= 15 for _, _, minute in found["fired"])


def test_a_spread_that_grows_around_the_same_mean_is_caught_by_the_projections() -> None:
    found = run(PROFILE, stream(SPACE, 25, 200, change="spread"), 200)
    features = {feature for rule, feature, minute in found["fired"] if rule == "feature-drift"}
    assert features and all(f.startswith("text#pc") for f in features)
    assert min(minute for _, _, minute in found["fired"]) in (15, 16)
    # The mean did not move: its distance says nothing, which is why the projections are tested.
    assert "embedding-drift" not in {rule for rule, _, _ in found["fired"]}


@pytest.mark.parametrize(("dims", "per_minute"), [(32, 40), (32, 600), (384, 120)])
def test_stationary_streams_stay_quiet(dims: int, per_minute: int) -> None:
    space = SPACE if dims == 32 else Space(dims, seed=9)
    profile = PROFILE if dims == 32 else profile_of(space)
    found = run(profile, stream(space, 30, per_minute, seed=11), per_minute)
    assert found["fired"] == []
    judged = [r for r in found["rows"] if r.metric in ("embedding_euclidean", "embedding_cosine")]
    assert len(judged) == 2 * 30 - 2  # (the last window is still open)
    assert sum(r.value > r.threshold for r in judged) <= 2  # at the budget's per-window rate, ~0.01 at most


def test_vectors_of_another_length_are_counted_and_alerted() -> None:
    found = run(PROFILE, stream(SPACE, 4, 100, wrong_at=1), 100)
    wrong = [r for r in found["rows"] if r.metric == "embedding_wrong_length"]
    assert [(r.feature, r.value, (r.window_start_ms - START) // 60_000) for r in wrong] == [("text", 3.0, 1)]
    assert ("embedding-wrong-length", "text", 1) in found["fired"]
    distance = [r for r in found["rows"] if r.metric == "embedding_euclidean"]
    assert len(distance) == 3  # the other 97 vectors of minute 1 still count


def test_partitions_merge_to_the_whole_and_checkpoints_keep_the_counts() -> None:
    raws = stream(SPACE, 4, 150, change="move", seed=13)
    metrics = ("embedding_euclidean", "embedding_cosine", "ks")
    whole = Pipeline({("search", "1"): PROFILE}, rolling_windows=0)
    expected = sorted(
        (r.window_start_ms, r.metric, r.feature or "", r.value)
        for r in whole.process(raws).rows + whole.flush().rows
        if r.metric in metrics
    )
    split = Pipeline({("search", "1"): PROFILE}, rolling_windows=0)
    stages = [split.new_stage(), split.new_stage(), split.new_stage()]
    merger = PartialMerger(range(3), split.window_ms)
    for i, stage in enumerate(stages):
        merger.add(i, stage.process(raws[i::3]))
    # One stage is checkpointed and restored half-way: its embedding counts survive exactly.
    restored = split.new_stage()
    restored.restore(loads(dumps(stages[0].state()), {("search", "1"): PROFILE}))
    stages[0] = restored
    for i, stage in enumerate(stages):
        merger.add(i, stage.flush())
    out = PipelineOutput()
    split.report_partials(merger.release(), out)
    found = sorted((r.window_start_ms, r.metric, r.feature or "", r.value) for r in out.rows if r.metric in metrics)
    assert found == expected
    assert {feature for _, metric, feature, _ in found if metric == "ks"} >= {"text#pc1", "text#pc8", "x"}
