"""Decode batches of raw event bytes, fast, with the contract's verdict.

Running the pydantic contract on every event costs ~7 µs. Here msgspec
decodes each event into typed structs that carry most of the contract's rules
(types, lengths, ranges, allowed values, no unknown fields) in C, at the cost
of a bare ``orjson.loads``; a few checks msgspec cannot express (control
characters in names, the timestamp's format and range, a prediction whenever
the status is ok) follow in Python. Whenever either refuses an event, the
event goes through :func:`~streamwatch.contract.events.parse_event`, which words the
reason exactly as the contract does, and has the last word: a rare valid event
that msgspec cannot take (an integer between 2**63 and 2**64) is accepted
there. A property test keeps the verdicts identical to the contract's.

Good events come out as the structs themselves (:class:`PredictionIn`,
:class:`FeatureIn`, :class:`LabelIn`: the contract's fields, defaults filled
in, timestamps in epoch milliseconds); bad ones as dead letters with their
index and reason. Nothing is dropped silently. The structs are invisible to
Python's cyclic garbage collector, as are their dicts of plain values, which
spares the collector from rescanning every event of every batch.

>>> batch = decode_batch([
...     b'{"type":"label","event_id":"e1","request_id":"r1","timestamp":1000,"model":"m","label":1}',
...     b'{"type":"label","event_id":"e2","request_id":"r2","timestamp":1000,"model":"m","label":[1]}',
... ])
>>> len(batch.labels), batch.dead_letters
(1, [DeadLetter(index=1, reason='label event: label: must be a number, string or boolean, not list')])
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

import msgspec
import orjson

from streamwatch.contract.events import CONTROL_CHARS, Status, Variant, parse_event
from streamwatch.contract.limits import (
    MAX_EMBEDDING_DIMS,
    MAX_EMBEDDINGS,
    MAX_EVENT_BYTES,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_MAP_ENTRIES,
    MAX_NAME_LENGTH,
    MAX_STRING_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
)
from streamwatch.errors import ContractError
from streamwatch.times import EPOCH, parse_rfc3339, to_ms

__all__ = ["DeadLetter", "DecodedBatch", "FeatureIn", "LabelIn", "PredictionIn", "decode_batch"]

_CONTROL = re.compile(CONTROL_CHARS)

# msgspec's integer bounds stop at int64; the contract's unsigned top half goes to the slow path.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_Text = Annotated[str, msgspec.Meta(max_length=MAX_STRING_LENGTH)]
_Scalar = _Int | float | bool | _Text
_Features = Annotated[dict[_Key, _Scalar | None], msgspec.Meta(max_length=MAX_FEATURES)]
_Strings = Annotated[dict[_Key, _Text], msgspec.Meta(max_length=MAX_MAP_ENTRIES)]
# msgspec refuses numbers a float cannot hold (1e999), and JSON has no NaN: every value is finite.
_Embeddings = Annotated[
    dict[_Key, Annotated[list[float], msgspec.Meta(min_length=1, max_length=MAX_EMBEDDING_DIMS)]],
    msgspec.Meta(max_length=MAX_EMBEDDINGS),
]
_Version = Literal[1, 2]
if TYPE_CHECKING:
    _Timestamp = int  # as decode_batch hands the events out: _check turned the time into epoch ms
else:
    _Timestamp = _Int | str  # as msgspec decodes it: epoch ms or RFC 3339 text


class PredictionIn(msgspec.Struct, tag_field="type", tag="prediction", forbid_unknown_fields=True, gc=False):
    """A decoded prediction event."""

    type: ClassVar[str] = "prediction"
    event_id: _Id
    request_id: _Id
    timestamp: _Timestamp
    model: _Name
    model_version: _Name
    latency_ms: Annotated[float, msgspec.Meta(ge=0)]
    schema_version: _Version = 1
    variant: Variant = "production"
    features: _Features = {}
    prediction: _Scalar | None = None
    score: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    status: Status = "ok"
    error: _Text | None = None
    segments: _Strings = {}
    metadata: _Strings = {}
    embeddings: _Embeddings = {}


class FeatureIn(msgspec.Struct, tag_field="type", tag="feature", forbid_unknown_fields=True, gc=False):
    """A decoded feature event."""

    type: ClassVar[str] = "feature"
    variant: ClassVar[str] = "production"
    event_id: _Id
    timestamp: _Timestamp
    model: _Name
    features: Annotated[dict[_Key, _Scalar | None], msgspec.Meta(min_length=1, max_length=MAX_FEATURES)]
    schema_version: _Version = 1
    request_id: _Id | None = None
    model_version: _Name | None = None


class LabelIn(msgspec.Struct, tag_field="type", tag="label", forbid_unknown_fields=True, gc=False):
    """A decoded label event."""

    type: ClassVar[str] = "label"
    event_id: _Id
    request_id: _Id
    timestamp: _Timestamp
    model: _Name
    label: _Scalar
    schema_version: _Version = 1


_DECODER = msgspec.json.Decoder(PredictionIn | FeatureIn | LabelIn)
_TYPES: dict[str, type] = {"prediction": PredictionIn, "feature": FeatureIn, "label": LabelIn}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that broke the contract: its position in the batch and why."""

    index: int
    reason: str


@dataclass(slots=True)
class DecodedBatch:
    """Valid events (timestamps in epoch ms, defaults filled in), by type, and the dead letters."""

    predictions: list[PredictionIn] = field(default_factory=list)
    features: list[FeatureIn] = field(default_factory=list)
    labels: list[LabelIn] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: Each good event's position in the batch, by type: where storage says it came from.
    positions: dict[str, list[int]] = field(default_factory=lambda: {"prediction": [], "feature": [], "label": []})


class _Refused(Exception):
    """The fast checks refused an event; the contract will say why."""


# Feature, segment and model names repeat in every event: each distinct one is checked
# for control characters once and remembered. A memo of a pure check, bounded in size.
_KNOWN_NAMES: set[str] = set()
_KNOWN_NAMES_CAP = 100_000


def _printable(names: Any) -> None:
    """msgspec checked the lengths; control characters remain (a name rarely has any)."""
    if _KNOWN_NAMES.issuperset(names):
        return
    for name in names:
        if not name.isprintable() and _CONTROL.search(name):
            raise _Refused
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_CAP:
        _KNOWN_NAMES.update(names)


def _id(value: str | None) -> None:
    if value is not None and not value.isprintable() and _CONTROL.search(value):
        raise _Refused


def _timestamp(value: int | str) -> int:
    if type(value) is int:
        if MIN_TIMESTAMP_MS <= value <= MAX_TIMESTAMP_MS:
            return value
        raise _Refused
    try:
        moment = parse_rfc3339(cast(str, value))  # msgspec gives an int or a str, and an int returned above
    except ValueError:
        raise _Refused from None
    if moment >= EPOCH:
        return to_ms(moment)
    raise _Refused


def _check(event: Any) -> Any:
    kind = event.type
    _id(event.event_id)
    _id(getattr(event, "request_id", None))
    names = [event.model]
    if kind == "prediction":
        if event.prediction is None and event.status == "ok":
            raise _Refused
        if event.embeddings and event.schema_version < 2:
            raise _Refused
        names.append(event.model_version)
        _printable(event.segments)
        _printable(event.metadata)
        _printable(event.embeddings)
    elif kind == "feature" and event.model_version is not None:
        names.append(event.model_version)
    _printable(names)
    if kind != "label":
        _printable(event.features)
    event.timestamp = _timestamp(event.timestamp)
    return event


def decode_batch(raws: Sequence[bytes]) -> DecodedBatch:
    """Decode and validate a batch of serialised events."""
    out = DecodedBatch()
    decode = _DECODER.decode
    events: list[Any] = []
    refused: list[int] = []
    for index, raw in enumerate(raws):
        try:
            if len(raw) > MAX_EVENT_BYTES:
                raise _Refused
            events.append(decode(raw))
        except (_Refused, msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            events.append(None)
            refused.append(index)
    if not _whole_batch_checked([event for event in events if event is not None] if refused else events):
        # Some event fails a check (or has an RFC 3339 time to parse): check them one by one.
        for index, event in enumerate(events):
            if event is not None:
                try:
                    _check(event)
                except _Refused:
                    events[index] = None
                    refused.append(index)
        refused.sort()
    for index in refused:
        events[index] = _slow_path(raws[index], index, out)
    sinks: dict[str, list[Any]] = {"prediction": out.predictions, "feature": out.features, "label": out.labels}
    positions = out.positions
    for index, event in enumerate(events):
        if event is not None:
            kind = event.type
            sinks[kind].append(event)
            positions[kind].append(index)
    return out


def _whole_batch_checked(events: list[Any]) -> bool:
    """:func:`_check` for a whole batch at once: a few C-level passes instead of a dozen calls per event.

    True when every event passes (and has its time in epoch ms already); False sends the batch
    through :func:`_check` event by event, which also parses RFC 3339 times.
    """
    if not events:
        return True
    times = [event.timestamp for event in events]
    if set(map(type, times)) != {int} or min(times) < MIN_TIMESTAMP_MS or max(times) > MAX_TIMESTAMP_MS:
        return False
    if not "".join([event.event_id for event in events]).isprintable():
        return False
    if not "".join([event.request_id for event in events if event.request_id is not None]).isprintable():
        return False
    predictions = [event for event in events if event.type == "prediction"]
    if any(event.prediction is None and event.status == "ok" for event in predictions):
        return False
    if any(event.embeddings and event.schema_version < 2 for event in predictions):
        return False

    def all_names() -> Iterator[Any]:  # a chain of C iterators: no Python step per name
        return chain(
            [event.model for event in events],
            [e.model_version for e in events if e.type != "label" and e.model_version is not None],
            chain.from_iterable([event.features for event in events if event.type != "label"]),
            chain.from_iterable([event.segments for event in predictions]),
            chain.from_iterable([event.metadata for event in predictions]),
            chain.from_iterable([event.embeddings for event in predictions]),
        )

    if _KNOWN_NAMES.issuperset(all_names()):  # names seen before, the usual case: one pass, no set built
        return True
    names = set(all_names())
    try:
        _printable(names)
    except _Refused:
        return False
    return True


def _slow_path(raw: bytes, index: int, out: DecodedBatch) -> Any:
    """Ask the contract itself: a dead letter with its exact reason, or (rarely) an event after all."""
    try:
        event = parse_event(raw)
    except ContractError as exc:
        out.dead_letters.append(DeadLetter(index, str(exc)))
        return None
    body = orjson.loads(event.model_dump_json())
    body["timestamp"] = to_ms(event.timestamp)
    kind = body.pop("type")
    # The contract accepted what msgspec could not hold (an integer over 2**63): build the struct
    # directly, which takes the values as they are.
    return _TYPES[kind](**body)
