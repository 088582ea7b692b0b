"""Event-time windows: lateness judged per event whatever the batching, and windows close in order."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core import NumericHistogram
from streamwatch.core.windows import SlidingMerge, TumblingWindows, merged

SIZE, LATENESS = 1000, 300
times = st.lists(st.integers(0, 20_000), max_size=200)


def one_at_a_time(stream: list[int]) -> list[bool]:
    """The definition, event by event: late when the window ended before the watermark."""
    largest, out = None, []
    for t in stream:
        watermark = None if largest is None else largest - LATENESS
        out.append(watermark is not None and (t - t % SIZE) + SIZE <= watermark)
        largest = t if largest is None else max(largest, t)
    return out


@given(times, st.lists(st.integers(0, 200), max_size=6))
def test_lateness_does_not_depend_on_batching(stream: list[int], cuts: list[int]) -> None:
    windows = TumblingWindows(SIZE, LATENESS, factory=lambda key: [])
    bounds = [0, *sorted(c for c in cuts if c <= len(stream)), len(stream)]
    late: list[bool] = []
    for start, end in itertools.pairwise(bounds):
        batch = windows.route(np.array(stream[start:end], dtype=np.int64))
        assert np.array_equal(batch.starts, np.array(stream[start:end], dtype=np.int64) // SIZE * SIZE)
        late += batch.late.tolist()
    assert late == one_at_a_time(stream)
    assert windows.late_events == sum(late)
    if stream:
        assert windows.watermark == max(stream) - LATENESS


def test_windows_close_in_order_once_the_watermark_passes() -> None:
    windows = TumblingWindows(SIZE, LATENESS, factory=lambda key: NumericHistogram([0.0, 1.0]))
    batch = windows.route(np.array([100, 1500, 2100, 900]))
    assert batch.late.tolist() == [False, False, False, True]  # 900 came after the watermark reached 1800
    for key in ("m1", "m2"):
        for start in np.unique(batch.starts[~batch.late]):
            windows.window(key, int(start)).update(np.array([0.5]))
    assert [(w.key, w.start, w.end) for w in windows.close_ready()] == [("m1", 0, 1000), ("m2", 0, 1000)]
    assert windows.close_ready() == []  # watermark 1800: [1000, 2000) is still open
    windows.route(np.array([3400]))  # watermark 3100
    assert [(w.key, w.start) for w in windows.close_ready()] == [("m1", 1000), ("m2", 1000), ("m1", 2000), ("m2", 2000)]
    assert windows.open_windows == 0


def test_window_zero_closes_and_late_events_are_counted() -> None:
    windows = TumblingWindows(SIZE, LATENESS, factory=lambda key: [])
    windows.route(np.array([10]))
    windows.window("m", 0).append(10)
    windows.route(np.array([1300]))  # watermark 1000: [0, 1000) is complete
    assert [w.aggregate for w in windows.close_ready()] == [[10]]
    late = windows.route(np.array([999, 1000]))
    assert late.late.tolist() == [True, False] and windows.late_events == 1


def test_an_idle_partition_is_advanced_by_the_caller() -> None:
    windows = TumblingWindows(SIZE, LATENESS, factory=lambda key: [])
    windows.route(np.array([500]))
    windows.window("m", 0)
    assert windows.close_ready() == []
    windows.advance_to(1300)
    assert len(windows.close_ready()) == 1
    windows.advance_to(5)  # time never goes back
    assert windows.watermark == 1000


def test_rolling_view_merges_without_touching_the_windows() -> None:
    parts = []
    for values in ([0.2], [0.7, 0.9], [1.5]):
        histogram = NumericHistogram([0.0, 1.0])
        histogram.update(np.array(values))
        parts.append(histogram)
    total = merged(parts, NumericHistogram.merge, copy.deepcopy)
    assert total.counts.tolist() == [0, 3, 1] and parts[0].n == 1
    with pytest.raises(ValueError, match="nothing to merge"):
        merged([], NumericHistogram.merge, copy.deepcopy)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="size_ms"):
        TumblingWindows(0, factory=lambda key: [])


@given(
    st.lists(st.integers(0, 40 * 3_600_000), min_size=1, max_size=60),
    st.lists(st.integers(1, 10), min_size=1, max_size=10),
)
def test_leaps_are_judged_the_same_however_the_stream_is_batched(times: list[int], sizes: list[int]) -> None:
    def run(cuts: list[int]) -> tuple[list[bool], int, int]:
        windows = TumblingWindows(60_000, 10_000, factory=lambda key: [], max_lead_ms=300_000)
        late: list[bool] = []
        at, turn = 0, 0
        while at < len(times):
            size = cuts[turn % len(cuts)]
            late += windows.route(np.array(times[at : at + size])).late.tolist()
            at, turn = at + size, turn + 1
        return late, windows.watermark, windows.leaps

    assert run(sizes) == run([len(times)]) == run([1])


def test_one_event_hours_ahead_does_not_make_the_rest_late_but_a_real_jump_moves_on() -> None:
    windows = TumblingWindows(60_000, 10_000, factory=lambda key: [], max_lead_ms=300_000)
    minute = 60_000
    stream = [i * 1_000 for i in range(300)]
    stream.insert(100, 9 * 3_600_000)  # local time sent as UTC
    assert not windows.route(np.array(stream)).late.any()
    assert windows.watermark == 299_000 - 10_000 and windows.leaps == 1
    # traffic resuming after a quiet night: the second event confirms the leap
    windows.route(np.array([12 * 3_600_000, 12 * 3_600_000 + minute]))
    assert windows.watermark == 12 * 3_600_000 + minute - 10_000
    plain = TumblingWindows(60_000, 10_000, factory=lambda key: [])
    assert plain.route(np.array(stream)).late.sum() == 200  # without the rule, every event after it is late


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), max_size=60))
def test_sliding_merge_equals_merging_the_items_kept(steps: list[tuple[int, int]]) -> None:
    """Each step adds an item a few positions on and drops the items more than ``keep`` behind it."""
    window: SlidingMerge[list[int]] = SlidingMerge(list.extend, list.copy)
    kept: list[tuple[int, list[int]]] = []
    at = 0
    for gap, keep in steps:
        at += gap
        window.push(at, [at])
        kept.append((at, [at]))
        window.drop_before(at - keep)
        kept = [(a, item) for a, item in kept if a >= at - keep]
        assert len(window) == len(kept)
        assert sorted(window.value()) == sorted(merged([item for _, item in kept], list.extend, list.copy))
