"""The wire contract: every event streamwatch reads from or writes to Kafka.

Inference services publish :class:`PredictionEvent`, :class:`FeatureEvent` and
:class:`LabelEvent`; streamwatch publishes :class:`AlertEvent` and
:class:`RetrainEvent`. The JSON Schema files in ``schemas/`` are generated
from these classes (``streamwatch schemas``), so producers in any language can
validate against them.

The contract is strict on purpose: a string where a number belongs, an
unknown field (usually a typo such as ``segment``) or a value over a limit is
rejected with the field named, instead of being silently coerced or dropped.

>>> event = parse_event(b'{"type": "label", "event_id": "e1", "request_id": "r1",'
...                     b' "timestamp": 1763900000000, "model": "credit", "label": 1}')
>>> event.label, event.timestamp.isoformat()
(1, '2025-11-23T12:13:20+00:00')
>>> parse_event(b'{"type": "label", "event_id": "e1", "request_id": "r1",'
...             b' "timestamp": "2026-11-23T10:00:00Z", "model": "credit", "label": [1]}')
Traceback (most recent call last):
...
streamwatch.errors.ContractError: label event: label: must be a number, string or boolean, not list
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from streamwatch.contract.limits import (
    MAX_EMBEDDING_DIMS,
    MAX_EMBEDDINGS,
    MAX_EVENT_BYTES,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_KEY_LENGTH,
    MAX_MAP_ENTRIES,
    MAX_NAME_LENGTH,
    MAX_STRING_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_INTEGER,
    MIN_TIMESTAMP_MS,
)
from streamwatch.errors import ContractError, describe_validation_error
from streamwatch.times import EPOCH, RFC3339_PATTERN, MissingOffsetError, parse_rfc3339, rfc3339, to_datetime, to_ms

__all__ = [
    "AlertEvent",
    "AnyEvent",
    "CircuitBreakEvent",
    "FeatureEvent",
    "InputEvent",
    "LabelEvent",
    "PredictionEvent",
    "RetrainEvent",
    "Window",
    "parse_event",
]

#: Names and ids carry no control characters (C0 and DEL): they end up in logs, SQL and dashboards.
CONTROL_CHARS = r"[\x00-\x1f\x7f]"
NO_CONTROL_CHARS = rf"^[^{CONTROL_CHARS[1:-1]}]+$"

Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=NO_CONTROL_CHARS)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NO_CONTROL_CHARS)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARS)]
Text = Annotated[str, StringConstraints(max_length=MAX_STRING_LENGTH)]
Variant = Literal["production", "canary", "shadow"]
Status = Literal["ok", "error"]
Severity = Literal["critical", "warning", "info"]
AlertKind = Literal["drift", "data_quality", "performance", "fairness", "slo", "divergence", "change"]


# RFC 3339 with a mandatory offset; the JSON Schema carries the same pattern.
RFC3339 = RFC3339_PATTERN


def _to_utc(value: Any) -> datetime:
    # bool is an int subclass; True is not a timestamp.
    if type(value) is int:
        if not MIN_TIMESTAMP_MS <= value <= MAX_TIMESTAMP_MS:
            raise PydanticCustomError("timestamp", "epoch milliseconds out of range (1970 to 9999)")
        return to_datetime(value)
    if isinstance(value, str):
        try:
            value = parse_rfc3339(value)
        except MissingOffsetError:
            raise PydanticCustomError("timestamp", "must carry a UTC offset, e.g. 2026-11-23T10:00:00Z") from None
        except ValueError:  # not RFC 3339, or e.g. month 13
            raise PydanticCustomError("timestamp", "must be an RFC 3339 date-time or epoch milliseconds") from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError("timestamp", "must carry a UTC offset, e.g. 2026-11-23T10:00:00Z")
        moment = value.astimezone(UTC)
        if moment < EPOCH:
            raise PydanticCustomError("timestamp", "out of range (1970 to 9999)")
        return moment
    raise PydanticCustomError(
        "timestamp", "must be an RFC 3339 date-time or epoch milliseconds, not {kind}", {"kind": type(value).__name__}
    )


def _rfc3339(value: datetime) -> str:
    return rfc3339(to_ms(value))


Timestamp = Annotated[
    datetime,
    PlainValidator(_to_utc),
    PlainSerializer(_rfc3339, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": RFC3339},
                {"type": "integer", "description": "milliseconds since the Unix epoch"},
            ],
            "description": "Event time: RFC 3339 with an offset, or epoch milliseconds. Stored as UTC.",
        }
    ),
]


def _scalar(value: Any, *, nullable: bool) -> Any:
    kind = type(value)
    if kind is bool:
        return value
    if kind is int:
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise PydanticCustomError("integer_range", "integer does not fit in 64 bits")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise PydanticCustomError("finite_number", "must be a finite number (send null for a missing value)")
        return value
    if kind is str:
        if len(value) > MAX_STRING_LENGTH:
            raise PydanticCustomError(
                "string_too_long", "string longer than {limit} characters", {"limit": MAX_STRING_LENGTH}
            )
        return value
    if value is None and nullable:
        return None
    expected = "a number, string, boolean or null" if nullable else "a number, string or boolean"
    raise PydanticCustomError(
        "scalar_type", "must be {expected}, not {kind}", {"expected": expected, "kind": kind.__name__}
    )


_SCALAR_SCHEMA: list[dict[str, Any]] = [
    {"type": "number"},
    {"type": "string", "maxLength": MAX_STRING_LENGTH},
    {"type": "boolean"},
]

FeatureValue = Annotated[
    Any,
    PlainValidator(lambda v: _scalar(v, nullable=True)),
    WithJsonSchema({"anyOf": [*_SCALAR_SCHEMA, {"type": "null"}], "description": "null means missing"}),
]
Target = Annotated[
    Any,
    PlainValidator(lambda v: _scalar(v, nullable=False)),
    WithJsonSchema({"anyOf": _SCALAR_SCHEMA, "description": "class label, number or string"}),
]
Features = Annotated[dict[Key, FeatureValue], Field(max_length=MAX_FEATURES)]
StringMap = Annotated[dict[Key, Text], Field(max_length=MAX_MAP_ENTRIES)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Embedding = Annotated[list[Finite], Field(min_length=1, max_length=MAX_EMBEDDING_DIMS)]
Embeddings = Annotated[dict[Key, Embedding], Field(max_length=MAX_EMBEDDINGS)]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    type: str
    # Version 1 is the default: an event that needs no field of version 2 may omit it (see SCHEMA_VERSION).
    schema_version: Literal[1, 2] = Field(1, description="Version of the wire contract: 2 for embeddings, else 1 or 2.")
    event_id: Id = Field(description="Unique id of this event; consumers deduplicate on it.")
    timestamp: Timestamp


class PredictionEvent(_Event):
    """One model call, as the inference service saw it."""

    type: Literal["prediction"] = "prediction"
    request_id: Id = Field(description="Correlation id that labels and shadow/canary comparisons join on.")
    model: Name
    model_version: Name
    variant: Variant = "production"
    features: Features = Field(default_factory=dict)
    prediction: Target | None = Field(None, description="Required when status is 'ok'.")
    score: Finite | None = Field(None, ge=0, le=1, description="Probability of the positive class.")
    latency_ms: Finite = Field(ge=0)
    status: Status = "ok"
    error: Text | None = None
    segments: StringMap = Field(default_factory=dict, description="Slice attributes, e.g. gender or region.")
    metadata: StringMap = Field(default_factory=dict, description="Free-form strings such as git sha or host.")
    embeddings: Embeddings = Field(
        default_factory=dict,
        description=(
            "Schema version 2. Vectors by name, e.g. a text embedding; each name keeps the length its reference"
            " profile has (checked by the workers)."
        ),
    )

    @model_validator(mode="after")
    def _prediction_when_ok(self) -> PredictionEvent:
        if self.status == "ok" and self.prediction is None:
            raise PydanticCustomError("prediction_missing", "prediction: required when status is 'ok'")
        return self

    @field_validator("embeddings")
    @classmethod
    def _embeddings_need_version_2(cls, value: dict[str, list[float]], info: ValidationInfo) -> dict[str, list[float]]:
        # (schema_version, declared before, is validated first; absent from data when it failed itself)
        if value and info.data.get("schema_version", 2) < 2:
            raise PydanticCustomError("schema_version", "requires schema_version 2")
        return value


class FeatureEvent(_Event):
    """Feature values logged apart from a prediction, e.g. by a feature pipeline."""

    type: Literal["feature"] = "feature"
    request_id: Id | None = None
    model: Name
    model_version: Name | None = None
    features: Annotated[dict[Key, FeatureValue], Field(min_length=1, max_length=MAX_FEATURES)]


class LabelEvent(_Event):
    """Ground truth for an earlier prediction, joined on ``(model, request_id)``."""

    type: Literal["label"] = "label"
    request_id: Id
    model: Name
    label: Target


class Window(BaseModel):
    """A half-open event-time interval ``[start, end)``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    start: Timestamp
    end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise PydanticCustomError("window_order", "end: must be after start")
        return self


class AlertEvent(_Event):
    """A state change of an alert (pending, firing or resolved), published by streamwatch."""

    type: Literal["alert"] = "alert"
    fingerprint: Id = Field(description="Stable id of the alert across its transitions; used for dedup.")
    rule: Name
    kind: AlertKind
    severity: Severity
    status: Literal["pending", "firing", "resolved"]
    model: Name
    model_version: Name
    variant: Variant = "production"
    reason: Text
    metric: Name | None = None
    feature: Key | None = None
    segment: StringMap | None = None
    value: Finite | None = None
    threshold: Finite | None = None
    window: Window | None = None
    starts_at: Timestamp
    ends_at: Timestamp | None = None
    evidence: dict[str, JsonValue] = Field(default_factory=dict)
    lineage: StringMap = Field(default_factory=dict, description="Reference profile lineage.")
    labels: StringMap = Field(default_factory=dict)
    example_request_ids: Annotated[list[Id], Field(max_length=10)] = Field(default_factory=list)
    runbook_url: Text | None = None
    dashboard_url: Text | None = None


class RetrainEvent(_Event):
    """A request to retrain a model version, for downstream training jobs."""

    type: Literal["retrain"] = "retrain"
    model: Name
    model_version: Name
    severity: Severity
    status: Literal["requested"] = "requested"
    reason: Text
    alert_fingerprints: list[Id] = Field(default_factory=list)
    evidence: dict[str, JsonValue] = Field(default_factory=dict, description="Drifted features or degraded metrics.")
    windows: list[Window] = Field(default_factory=list)
    lineage: StringMap = Field(default_factory=dict)
    suggested_data_start: Timestamp | None = None
    suggested_data_end: Timestamp | None = None


class CircuitBreakEvent(_Event):
    """A control event for the serving layer: stop sending traffic to a model version, or resume.

    streamwatch publishes it only when ``alerting.circuit_break`` is on and a
    firing rule asks for it (``open``), and again when that alert resolves
    (``closed``). What to do with it is the serving layer's decision.
    """

    type: Literal["circuit_break"] = "circuit_break"
    state: Literal["open", "closed"] = Field(description="open: stop serving this version; closed: resume.")
    model: Name
    model_version: Name
    variant: Variant = "production"
    reason: Text
    alert_fingerprint: Id
    rule: Name


#: What inference services publish.
InputEvent = Annotated[PredictionEvent | FeatureEvent | LabelEvent, Field(discriminator="type")]
#: Everything on a streamwatch topic.
AnyEvent = Annotated[
    PredictionEvent | FeatureEvent | LabelEvent | AlertEvent | RetrainEvent | CircuitBreakEvent,
    Field(discriminator="type"),
]

_INPUT = TypeAdapter(InputEvent)
_ANY = TypeAdapter(AnyEvent)
_TYPES = "'prediction', 'feature' or 'label'"


def parse_event(
    raw: bytes | str, *, any_type: bool = False
) -> PredictionEvent | FeatureEvent | LabelEvent | AlertEvent | RetrainEvent | CircuitBreakEvent:
    """Validate one serialised event against the contract.

    Raises :class:`~streamwatch.errors.ContractError` naming the field. With
    ``any_type`` alert, retrain and circuit-break events are accepted too.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise ContractError("event", f"{len(raw)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
    if not raw:  # a Kafka record with no value (a tombstone) arrives as b""
        raise ContractError("event", "empty (a record with no value, such as a Kafka tombstone)")
    try:
        return (_ANY if any_type else _INPUT).validate_json(raw)
    except ValidationError as exc:
        raise _contract_error(exc) from None


def _contract_error(exc: ValidationError) -> ContractError:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return ContractError("event", f"not valid JSON ({first['ctx']['error']})")
    if first["type"] in {"union_tag_not_found", "model_type", "model_attributes_type"}:
        return ContractError(
            "type", f"missing; must be {_TYPES}" if first["loc"] == () else "event must be a JSON object"
        )
    if first["type"] == "union_tag_invalid":
        return ContractError("type", f"unknown event type; must be {_TYPES}")
    if first["type"] in {"dict_type"} and first["loc"] == ():
        return ContractError("event", "must be a JSON object")
    field, reason = describe_validation_error(exc, skip=1)
    tag = first["loc"][0]
    return ContractError(field, reason, event_type=str(tag))
