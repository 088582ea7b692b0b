"""Shadow and canary against production, through the pipeline."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.core.divergence import Divergence, Twin, TwinJoin
from streamwatch.pipeline.pipeline import Pipeline

START = 1_795_000_020_000 - 1_795_000_020_000 % 60_000


def test_canary_agreement_shift_and_latency_per_window() -> None:
    rng = np.random.default_rng(8)
    encoder = Encoder(clock_ms=now_ms)
    raws, truth = [], {"agree": 0, "shift": [], "prod_latency": [], "canary_latency": []}
    for i in range(600):  # one minute; every request also goes to the canary
        at = START + i * 100
        score = float(rng.random())
        canary_score = min(1.0, score + 0.05)
        prod_latency, canary_latency = float(rng.lognormal(3, 0.3)), float(rng.lognormal(3.5, 0.3))
        truth["agree"] += int(score >= 0.5) == int(canary_score >= 0.5)
        truth["shift"].append(canary_score - score)
        truth["prod_latency"].append(prod_latency)
        truth["canary_latency"].append(canary_latency)
        raws.append(
            encoder.prediction(
                "credit",
                "3",
                f"r{i}",
                prod_latency,
                None,
                int(score >= 0.5),
                score,
                "production",
                "ok",
                None,
                None,
                None,
                at,
                None,
            )
        )
        raws.append(
            encoder.prediction(
                "credit",
                "4",
                f"r{i}",
                canary_latency,
                None,
                int(canary_score >= 0.5),
                canary_score,
                "canary",
                "ok",
                None,
                None,
                None,
                at + 3,
                None,
            )
        )
    pipeline = Pipeline({})
    rows = pipeline.process(raws).rows + pipeline.flush().rows
    figures = {r.metric: r for r in rows if r.variant == "canary" and r.segment}
    # Every pair counts, the first included: production predictions wait for a twin even
    # before the model has shown any canary.
    assert figures["paired"].value == 600 and figures["paired"].model_version == "4"
    assert figures["paired"].segment == (("production_version", "3"),)
    assert figures["agreement_rate"].value == truth["agree"] / 600
    assert figures["score_shift"].value == pytest.approx(np.mean(truth["shift"]), abs=1e-8)
    expected_ratio = np.quantile(truth["canary_latency"], 0.95, method="inverted_cdf") / np.quantile(
        truth["prod_latency"], 0.95, method="inverted_cdf"
    )
    assert figures["latency_p95_ratio"].value == pytest.approx(expected_ratio, rel=0.02)


def test_twins_pair_whichever_comes_first_and_memory_is_capped() -> None:
    join = TwinJoin(max_pending=2)
    assert join.add("m", "a", Twin("shadow", "5", 0, None, 9.0, 0)) == []
    [(production, shadow)] = join.add("m", "a", Twin("production", "3", 1, None, 5.0, 1))
    assert (production.variant, shadow.variant) == ("production", "shadow")
    join.add("m", "b", Twin("production", "3", 1, None, 5.0, 2))
    join.add("m", "c", Twin("production", "3", 1, None, 5.0, 3))
    assert join.evicted == 2 and join.add("m", "a", Twin("canary", "4", 1, None, 5.0, 4)) == []


def test_divergence_partials_merge_exactly() -> None:
    rng = np.random.default_rng(2)
    pairs = [
        (
            Twin("production", "3", int(rng.random() < 0.5), float(rng.random()), float(rng.lognormal(3, 1)), i),
            Twin("canary", "4", int(rng.random() < 0.5), float(rng.random()), float(rng.lognormal(3, 1)), i),
        )
        for i in range(300)
    ]
    whole, left, right = Divergence(), Divergence(), Divergence()
    whole.update(pairs)
    left.update(pairs[:101])
    right.update(pairs[101:])
    merged = copy.deepcopy(left)
    merged.merge(right)
    assert merged.metrics() == whole.metrics()


def test_too_few_pairs_report_no_rates() -> None:
    """A canary on 5% of 10 requests a minute pairs one request a window: its p95 latency ratio is one
    request's, and read 1.5 in a window out of three. Below the pairs each needs, the figures are NaN."""
    from streamwatch.core.divergence import MIN_LATENCY_PAIRS, MIN_PAIRS

    def pairs(n: int) -> list[tuple[Twin, Twin]]:
        return [(Twin("production", "3", 1, 0.5, 20.0, 0), Twin("canary", "4", 1, 0.5, 45.0, 0)) for _ in range(n)]

    for n, defined in ((MIN_PAIRS - 1, set()), (MIN_PAIRS, {"agreement_rate", "score_shift", "score_abs_diff"})):
        divergence = Divergence()
        divergence.update(pairs(n))
        metrics = dict(divergence.metrics())
        assert metrics["paired"] == n
        assert {m for m, v in metrics.items() if m != "paired" and not np.isnan(v)} == defined
    divergence = Divergence()
    divergence.update(pairs(MIN_LATENCY_PAIRS))
    assert dict(divergence.metrics())["latency_p95_ratio"] == pytest.approx(45.0 / 20.0, rel=0.01)


@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from("abcdef"), st.sampled_from(["production", "canary", "shadow"])), max_size=10
        ),
        max_size=5,
    ),
    st.integers(1, 5),
)
def test_answers_added_at_once_pair_and_keep_what_adding_one_by_one_does(steps: list, cap: int) -> None:
    bulk, one = TwinJoin(max_pending=cap), TwinJoin(max_pending=cap)
    for number, batch in enumerate(steps):
        keys = [("m", rid) for rid, _ in batch]
        answers = [(variant, "v", 1, 0.5, 10.0, number) for _, variant in batch]
        got = bulk.add_answers(keys, answers)
        want = [("m", p, c) for (m, r), a in zip(keys, answers, strict=True) for p, c in one.add_answer(m, r, a)]
        assert got == want
        assert vars(bulk) == vars(one)
