"""Generate the JSON Schema files in ``schemas/`` from the pydantic models.

The models are the contract; the files are how producers in other languages
see it. ``streamwatch schemas --check`` (and a test) fail when they differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from streamwatch.alerts.notification import Notification
from streamwatch.alerts.silences import Silence
from streamwatch.contract.events import (
    AlertEvent,
    CircuitBreakEvent,
    FeatureEvent,
    InputEvent,
    LabelEvent,
    PredictionEvent,
    RetrainEvent,
)
from streamwatch.contract.limits import SCHEMA_VERSION
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["render_schemas", "stale_schemas", "write_schemas"]

_MODELS: dict[str, type[BaseModel]] = {
    "prediction": PredictionEvent,
    "feature": FeatureEvent,
    "label": LabelEvent,
    "alert": AlertEvent,
    "retrain": RetrainEvent,
    "circuit-break": CircuitBreakEvent,
    # Not events, but on the wire too: the generic webhook's body, and the silences topic's records.
    "notification": Notification,
    "silence": Silence,
}


def _document(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:streamwatch:schema:v{SCHEMA_VERSION}:{name}",
        **schema,
    }


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, for every event and for the union of input events."""
    files = {
        f"{name}.schema.json": _document(name, model.model_json_schema(mode="validation"))
        for name, model in _MODELS.items()
    }
    union = TypeAdapter(InputEvent).json_schema(mode="validation")
    union["title"] = "InputEvent"
    union["description"] = "Any event an inference service publishes, discriminated by `type`."
    files["input-event.schema.json"] = _document("input-event", union)
    files["profile.schema.json"] = _document("profile", ReferenceProfile.model_json_schema(mode="validation"))
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in files.items()}


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema file into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Names of schema files in ``directory`` that are missing, outdated or unexpected."""
    expected = render_schemas()
    stale = [name for name, text in expected.items() if _read(directory / name) != text]
    stale += sorted(p.name for p in directory.glob("*.schema.json") if p.name not in expected)
    return stale


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
