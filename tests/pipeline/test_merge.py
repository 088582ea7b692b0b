"""N partitions, merged, report exactly what one pipeline reports on the whole stream."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.pipeline.stage import Partial, StageOutput
from streamwatch.profiles.model import build_profile
from tests.pipeline.test_pipeline import LINEAGE, START


def calibrated_profile():  # type: ignore[no-untyped-def]
    """The reference of a binary classifier with labels, scores and predictions: its score is calibrated
    (performance is estimated before labels) and its predicted class watched for drift."""
    rng = np.random.default_rng(0)
    score = rng.random(20_000)
    return build_profile(
        {
            "income": rng.normal(50, 10, 20_000),
            "age": rng.integers(18, 80, 20_000).astype(float),
            "region": rng.choice(np.array(["north", "south"], dtype=object), 20_000),
            "score": score,
            "label": (rng.random(20_000) < 0.4).astype(int),
            "prediction": (score > 0.5).astype(int),
        },
        lineage=LINEAGE,
        score_column="score",
        label_column="label",
        prediction_column="prediction",
    )


PROFILE = calibrated_profile()


def stream(minutes: int = 4, per_minute: int = 150) -> list[bytes]:
    """Predictions of production and a canary (same requests), labels a minute later, in time order."""
    rng = np.random.default_rng(7)
    encoder = Encoder(clock_ms=now_ms)
    timed: list[tuple[int, bytes]] = []
    for minute in range(minutes):
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            request = f"r{minute}-{i}"
            features = {
                "income": float(rng.normal(50 + 15 * (minute == 2), 10)),
                "age": int(rng.integers(18, 80)),
                "region": str(rng.choice(["north", "south", "east"])),
            }
            segments = {"gender": "FM"[i % 2]}
            score = float(rng.random())
            for variant, version in (("production", "3"), ("canary", "4")):
                if variant == "canary" and i % 3:
                    continue
                timed.append(
                    (
                        at,
                        encoder.prediction(
                            "credit",
                            version,
                            request,
                            float(rng.lognormal(3, 0.5)),
                            features,
                            int(score > 0.5),
                            score,
                            variant,
                            "ok",
                            None,
                            segments,
                            None,
                            at,
                            None,
                        ),
                    )
                )
            if i % 2 == 0:
                label = encoder.label(
                    model="credit", request_id=request, label=int(rng.random() < 0.4), timestamp=at + 60_000
                )
                timed.append((at + 60_000, label))
    timed.sort(key=lambda pair: pair[0])
    return [raw for _, raw in timed]


def final_state(outputs: list[PipelineOutput]) -> tuple[dict[Any, Any], set[Any]]:
    """The last value of every metric row (later reports of a window replace earlier ones), and the findings."""
    rows: dict[Any, Any] = {}
    findings = set()
    for out in outputs:
        for row in out.rows:
            identity = (
                row.model,
                row.model_version,
                row.variant,
                row.window,
                row.window_start_ms,
                row.metric,
                row.feature,
                row.segment,
            )
            rows[identity] = (row.value, row.lower, row.upper, row.threshold)
        for f in out.findings:
            evidence = tuple(sorted((k, repr(v)) for k, v in f.evidence.items()))
            findings.add(
                (
                    f.kind,
                    f.model_version,
                    f.variant,
                    f.window_start_ms,
                    f.metric,
                    f.feature,
                    f.segment,
                    round(f.value, 12),
                    evidence,
                )
            )
    return rows, findings


def same(a: dict[Any, Any], b: dict[Any, Any]) -> None:
    assert a.keys() == b.keys()
    for identity, values in a.items():
        for x, y in zip(values, b[identity], strict=True):
            assert (
                x == y
                or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12))
                or (x is not None and y is not None and math.isnan(x) and math.isnan(y))
            ), (identity, values, b[identity])


def whole_run(raws: list[bytes]) -> tuple[dict[Any, Any], set[Any]]:
    pipeline = Pipeline({("credit", "3"): PROFILE}, rolling_windows=3, min_samples=5, slices={"credit": [["gender"]]})
    return final_state([pipeline.process(raws), pipeline.flush()])


def partitioned_run(raws: list[bytes], partitions: int, batch_sizes: list[int]) -> tuple[dict[Any, Any], set[Any]]:
    pipeline = Pipeline({("credit", "3"): PROFILE}, rolling_windows=3, min_samples=5, slices={"credit": [["gender"]]})
    stages = [pipeline.new_stage() for _ in range(partitions)]
    split: list[list[bytes]] = [[] for _ in range(partitions)]
    for raw in raws:  # keyed by request id, as the producer does
        request_id = raw.split(b'"request_id":"')[1].split(b'"')[0]
        split[zlib.crc32(request_id) % partitions].append(raw)
    merger = PartialMerger(range(partitions), pipeline.window_ms)
    outputs = []
    cursors = [0] * partitions
    turn = 0
    # Interleave the partitions' batches the way a consumer's fetches would.
    while any(cursors[p] < len(split[p]) for p in range(partitions)):
        p = turn % partitions
        size = batch_sizes[turn % len(batch_sizes)]
        turn += 1
        if cursors[p] >= len(split[p]):
            continue
        stage_out = stages[p].process(split[p][cursors[p] : cursors[p] + size])
        cursors[p] += size
        merger.add(p, stage_out)
        out = PipelineOutput(late_events=stage_out.late_events)
        pipeline.report_partials(merger.release(), out)
        outputs.append(out)
    for p, stage in enumerate(stages):
        merger.add(p, stage.flush())
    out = PipelineOutput()
    pipeline.report_partials(merger.release(), out)
    outputs.append(out)
    assert sum(o.late_events for o in outputs) == 0
    return final_state(outputs)


RAWS = stream()
WHOLE = whole_run(RAWS)


def test_the_stream_exercises_every_kind_of_partial() -> None:
    metrics = {identity[5] for identity in WHOLE[0]}
    assert {"psi", "latency_p99", "agreement_rate", "roc_auc", "selection_rate", "burn_rate_1h"} <= metrics
    assert {"estimated_accuracy", "estimated_roc_auc", "estimate_error"} <= metrics
    assert any(identity[5] == "estimated_f1" and identity[7] == (("gender", "F"),) for identity in WHOLE[0])
    assert any(identity[6] == "__prediction__" for identity in WHOLE[0])  # the predicted class's drift
    assert any(identity[3] == "3m" for identity in WHOLE[0])  # the rolling view
    assert {f[0] for f in WHOLE[1]} >= {"drift"}


@settings(max_examples=8, deadline=None)
@given(partitions=st.integers(1, 6), batch_sizes=st.lists(st.integers(1, 400), min_size=1, max_size=4))
def test_any_number_of_partitions_reports_what_the_whole_stream_does(partitions: int, batch_sizes: list[int]) -> None:
    rows, findings = partitioned_run(RAWS, partitions, batch_sizes)
    same(rows, WHOLE[0])
    assert findings == WHOLE[1]


def test_an_idle_partition_stops_holding_windows_open() -> None:
    pipeline = Pipeline({("credit", "3"): PROFILE}, rolling_windows=0)
    stage = pipeline.new_stage()
    merger = PartialMerger([0, 1], pipeline.window_ms)
    merger.add(0, stage.process(RAWS[: len(RAWS) // 2]))
    assert not [p for p in merger.release() if p.kind == "window"]  # partition 1 has sent nothing
    merger.set_idle(1)
    assert [p for p in merger.release() if p.kind == "window"]


def test_a_partial_sent_again_replaces_the_first_and_a_late_one_is_counted() -> None:
    merger = PartialMerger([0, 1], 60_000, merge=list.extend)
    key = ("m", "1", "production")
    merger.add(0, StageOutput([Partial("window", key, 0, [1])], watermark=10))
    merger.add(0, StageOutput([Partial("window", key, 0, [1])], watermark=70_000))  # a restarted stage resends
    merger.add(1, StageOutput([Partial("window", key, 0, [2])], watermark=70_000))
    [released] = merger.release()
    assert released.aggregate == [1, 2]
    merger.add(1, StageOutput([Partial("window", key, 0, [2])], watermark=70_000))
    assert merger.release() == [] and merger.late_partials == 1
