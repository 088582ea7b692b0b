"""The JSON Schema files are generated from the pydantic models and kept in step."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from streamwatch.cli.schemas import render_schemas, stale_schemas, write_schemas
from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder

SCHEMAS = Path(__file__).parent.parent.parent / "schemas"


def test_committed_schemas_are_current() -> None:
    assert stale_schemas(SCHEMAS) == [], "run `make schemas` and commit the result"


def test_a_changed_model_makes_schemas_stale(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    label = tmp_path / "label.schema.json"
    label.write_text(label.read_text().replace('"label"', '"label2"', 1))
    (tmp_path / "old.schema.json").write_text("{}")
    assert stale_schemas(tmp_path) == ["label.schema.json", "old.schema.json"]


@pytest.mark.parametrize("name", sorted(render_schemas()))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(render_schemas()[name]))


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / "input-event.schema.json").read_text()))


def test_encoder_output_validates_against_the_schema() -> None:
    encoder = Encoder(clock_ms=now_ms)
    events = [
        encoder.prediction(
            model="m",
            model_version="1",
            request_id="r",
            latency_ms=3,
            prediction="yes",
            features={"a": 1, "b": None, "c": "x", "d": True},
            score=0.2,
            segments={"g": "F"},
            metadata={"host": "h"},
        ),
        encoder.prediction(model="m", model_version="1", request_id="r", latency_ms=3, status="error", error="boom"),
        encoder.features(model="m", features={"a": 1.5}, request_id="r"),
        encoder.label(model="m", request_id="r", label=False),
    ]
    for raw in events:
        validator().validate(orjson.loads(raw))


@pytest.mark.parametrize(
    "change",
    [
        {"score": "0.5"},
        {"features": {"a": [1]}},
        {"segment": {}},
        {"variant": "blue"},
        {"latency_ms": -1},
        {"timestamp": "not a time"},
        {"features": {"k" * 129: 1}},
    ],
)
def test_the_schema_rejects_what_the_contract_rejects(change: dict[str, object]) -> None:
    body = orjson.loads(
        Encoder(clock_ms=now_ms).prediction(model="m", model_version="1", request_id="r", latency_ms=3, prediction=1)
    )
    body.update(change)
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(
            body,
        )
