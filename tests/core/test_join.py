"""The label join: every prediction and label accounted for once, in bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamwatch.core.join import LabelJoin, Prediction

H = 1_000


def prediction(ts: int, variant: str = "production", value: int = 1) -> Prediction:
    return Prediction(timestamp_ms=ts, model_version="1", variant=variant, prediction=value)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("p"), st.integers(0, 9), st.integers(0, 5000), st.sampled_from(["production", "canary"])),
        st.tuples(st.just("l"), st.integers(0, 9), st.integers(0, 5000), st.integers(0, 1)),
        st.tuples(st.just("x"), st.integers(0, 7000), st.just(0), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(operations, st.integers(1, 20))
def test_everything_is_accounted_for_once(ops: list[tuple[str, int, int, object]], cap: int) -> None:
    join = LabelJoin(horizon_ms=H, max_pending=cap, clock_skew_ms=100)
    predictions = labels = 0
    for kind, a, b, c in ops:
        if kind == "p":
            predictions += 1
            join.add_prediction("m", f"r{a}", prediction(b, str(c)))
        elif kind == "l":
            labels += 1
            join.add_label("m", f"r{a}", c, b)
        else:
            join.expire(a)
        assert join.pending_predictions <= cap and join.pending_labels <= cap
        assert predictions == (
            join.matched_predictions + join.unlabelled + join.evicted_predictions + join.pending_predictions
        )
    join.expire(10**9)
    assert join.pending_predictions == 0 and join.pending_labels == 0
    assert predictions == join.matched_predictions + join.unlabelled + join.evicted_predictions
    assert labels == (
        join.matched_labels + join.late_labels + join.orphan_labels + join.duplicate_labels + join.evicted_labels
    )
    assert join.early_labels <= join.matched_labels


def test_label_after_prediction_within_the_horizon() -> None:
    join = LabelJoin(horizon_ms=H)
    join.add_prediction("m", "r", prediction(0))
    assert [label for _, label in join.add_label("m", "r", 0, H)] == [0]  # the horizon is inclusive


def test_early_label_matches_production_and_its_canary_twin() -> None:
    join = LabelJoin(horizon_ms=H)
    assert join.add_label("m", "r", 1, 500) == []
    assert join.pending_labels == 1
    assert [p.variant for p, _ in join.add_prediction("m", "r", prediction(100))] == ["production"]
    assert [p.variant for p, _ in join.add_prediction("m", "r", prediction(120, "canary"))] == ["canary"]
    assert (join.matched_predictions, join.matched_labels, join.early_labels, join.pending_labels) == (2, 1, 1, 0)


def test_twin_after_the_label_still_matches() -> None:
    join = LabelJoin(horizon_ms=H)
    join.add_prediction("m", "r", prediction(0))
    assert len(join.add_label("m", "r", 1, 300)) == 1
    assert len(join.add_prediction("m", "r", prediction(10, "shadow"))) == 1
    assert join.matched_labels == 1 and join.matched_predictions == 2


def test_late_orphan_duplicate_and_unlabelled() -> None:
    join = LabelJoin(horizon_ms=H, clock_skew_ms=0)
    join.add_prediction("m", "late", prediction(0))
    assert join.add_label("m", "late", 1, H + 1) == []
    join.add_label("m", "orphan", 1, 0)
    join.add_prediction("m", "never", prediction(0))
    join.add_prediction("m", "dup", prediction(0))
    join.add_label("m", "dup", 1, 10)
    join.add_label("m", "dup", 0, 20)
    expired = join.expire(H + 1)
    assert [p.timestamp_ms for p in expired] == [0]
    assert (join.late_labels, join.orphan_labels, join.duplicate_labels, join.unlabelled) == (1, 1, 1, 2)


def test_clock_skew_is_tolerated_up_to_its_bound() -> None:
    join = LabelJoin(horizon_ms=H, clock_skew_ms=50)
    join.add_prediction("m", "a", prediction(100))
    join.add_prediction("m", "b", prediction(100))
    assert len(join.add_label("m", "a", 1, 50)) == 1
    assert join.add_label("m", "b", 1, 49) == [] and join.late_labels == 1


def test_state_is_capped_oldest_first() -> None:
    join = LabelJoin(horizon_ms=H, max_pending=2)
    for i in range(5):
        join.add_prediction("m", f"r{i}", prediction(i))
    assert join.pending_predictions == 2 and join.evicted_predictions == 3
    assert len(join.add_label("m", "r4", 1, 10)) == 1 and join.add_label("m", "r0", 1, 10) == []


def test_models_do_not_share_request_ids() -> None:
    join = LabelJoin(horizon_ms=H)
    join.add_prediction("a", "r", prediction(0))
    assert join.add_label("b", "r", 1, 10) == [] and join.pending_predictions == 1


batches = st.lists(
    st.lists(st.tuples(st.sampled_from(["m", "n"]), st.sampled_from("abcdefgh"), st.integers(0, 3)), max_size=12),
    max_size=5,
)


@given(batches, st.integers(1, 6))
def test_a_batch_added_at_once_leaves_what_adding_one_by_one_does(steps: list, cap: int) -> None:
    """Keys repeat within and across batches, labels come between them, and the cap evicts: the bulk path
    (runs of new keys stored at once) must leave the very state, counters and matches of the sequential one."""
    bulk, one = LabelJoin(horizon_ms=100, max_pending=cap), LabelJoin(horizon_ms=100, max_pending=cap)
    for number, batch in enumerate(steps):
        keys = [(model, rid) for model, rid, _ in batch]
        packed = [(t, "v", "production", 1, 0.5, ()) for _, _, t in batch]
        got = bulk.add_packed_many(keys, packed)
        want = [(m, p, label) for (m, r), q in zip(keys, packed, strict=True) for p, label in one.add_packed(m, r, q)]
        assert got == want
        label = "abcdefgh"[number]
        assert bulk.add_label("m", label, 1, 2) == one.add_label("m", label, 1, 2)
        assert vars(bulk) == vars(one)  # OrderedDicts compare in order: the same entries, the same order
