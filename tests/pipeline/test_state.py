"""A stage or reporter restored from a checkpoint goes on exactly as if it had never stopped."""

from __future__ import annotations

import zlib

import pytest

from streamwatch.errors import StreamwatchError
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from tests.pipeline.test_merge import PROFILE, RAWS, WHOLE, final_state, same

PROFILES = {("credit", "3"): PROFILE}


def pipeline() -> Pipeline:
    return Pipeline(PROFILES, rolling_windows=3, min_samples=5, slices={"credit": [["gender"]]})


@pytest.mark.parametrize("cut", [1, 250, 777, len(RAWS) - 3])
def test_a_stage_and_reporter_restored_mid_stream_report_what_an_uninterrupted_run_does(cut: int) -> None:
    first = pipeline()
    outputs = [first.process(RAWS[:cut])]
    stage_blob = state_codec.dumps(first.stage.state())
    reporter_blob = state_codec.dumps(first.reporter.state())
    second = pipeline()  # a new process: nothing shared with the first but the bytes
    second.stage.restore(state_codec.loads(stage_blob, PROFILES))
    second.reporter.restore(state_codec.loads(reporter_blob, PROFILES))
    outputs += [second.process(RAWS[cut:]), second.flush()]
    rows, findings = final_state(outputs)
    same(rows, WHOLE[0])
    assert findings == WHOLE[1]


def test_a_checkpointed_merger_resumes() -> None:
    p = pipeline()
    stages = [p.new_stage(), p.new_stage()]
    merger = PartialMerger([0, 1], p.window_ms)
    outputs = []
    for i, raw in enumerate(RAWS):
        n = zlib.crc32(raw.split(b'"request_id":"')[1].split(b'"')[0]) % 2  # keyed by request id
        merger.add(n, stages[n].process([raw]))
        if i == len(RAWS) // 2:
            merger = state_codec.loads(state_codec.dumps(merger), PROFILES)
        out = PipelineOutput()
        p.report_partials(merger.release(), out)
        outputs.append(out)
    for n, stage in enumerate(stages):
        merger.add(n, stage.flush())
    out = PipelineOutput()
    p.report_partials(merger.release(), out)
    rows, _ = final_state([*outputs, out])
    same(rows, WHOLE[0])


def test_a_checkpoint_of_another_reference_profile_is_refused_by_name() -> None:
    blob = state_codec.dumps(pipeline().stage.state() | {"profile": PROFILE})
    with pytest.raises(StreamwatchError, match=r"reference profile credit 3 \(f{12}\)"):
        state_codec.loads(blob, {})
