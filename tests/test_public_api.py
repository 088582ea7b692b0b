"""The public API is small and explicit; importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import streamwatch

PUBLIC = [
    "AlertEvent",
    "ConfigError",
    "ContractError",
    "FeatureEvent",
    "LabelEvent",
    "PredictionEvent",
    "Producer",
    "ProducerStats",
    "RetrainEvent",
    "Settings",
    "StreamwatchError",
    "__version__",
    "load_settings",
    "new_request_id",
    "parse_event",
    "request_id_from_headers",
]


def test_all_is_pinned() -> None:
    assert streamwatch.__all__ == PUBLIC, "a change to the public API must be deliberate: update this test"
    for name in PUBLIC:
        assert getattr(streamwatch, name) is not None


def test_import_stays_light() -> None:
    # An inference service pays for librdkafka only when it builds a Producer, and
    # never for numpy, scipy or pyarrow, which only the core and the CLI need.
    code = "import sys, streamwatch; print(sorted({'confluent_kafka', 'numpy', 'scipy', 'pyarrow'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
