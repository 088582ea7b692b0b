"""Validate and serialise events on the inference hot path.

:mod:`streamwatch.contract.events` is the contract; running pydantic on every call
would cost ~20 µs, an order of magnitude more than handing the bytes to
Kafka. :class:`Encoder` enforces the same rules with checks that cost well
under a microsecond for a typical event, and a property test keeps the two in
agreement: whatever the encoder emits, the contract accepts, and whatever it
refuses, the contract refuses too.

Three things make it cheap:

* names (feature, segment and metadata keys, model names) repeat on every
  call, so each distinct name is checked once and remembered in a bounded set;
* what a model's predictions have in common (type, model, version, variant,
  status) is serialised once per model and variant (:meth:`Encoder.prediction_heads`),
  for the SDK's fast path to splice in;
* when the whole payload is shorter than the string limit, no string in it can
  be too long, so string lengths are only measured for large events.

The encoder is pure: it does no I/O, and the clock is injected.

>>> enc = Encoder(event_ids=lambda: "e1", clock_ms=lambda: 1763900000000)
>>> enc.label(model="credit", request_id="r1", label=1)
b'{"type":"label","schema_version":1,"event_id":"e1","request_id":"r1","timestamp":1763900000000,"model":"credit","label":1}'
>>> enc.label(model="credit", request_id="r1", label=[1])
Traceback (most recent call last):
...
streamwatch.errors.ContractError: label: must be a number, string or boolean, not list
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streamwatch.contract.ids import event_id_factory
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
from streamwatch.errors import ContractError

__all__ = ["Encoder"]

# The version an event without embeddings carries: producers write the lowest version that describes an
# event, so that workers of the previous release keep reading what an upgraded producer sends.
_V1 = 1
_V2 = 2

# One cache serves keys and model names because they share one rule.
assert MAX_KEY_LENGTH == MAX_NAME_LENGTH
_NAME_CACHE_SIZE = 100_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN = frozenset({int, float, bool, str, type(None)})
_STR_ONLY = frozenset({str})
_NUMBERS = frozenset({int, float})
_VARIANTS = frozenset({"production", "canary", "shadow"})
_STATUSES = frozenset({"ok", "error"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HEADS_CACHE_SIZE = 1024
_NO_HEADS: Mapping[str, orjson.Fragment] = {}  # shared and never written to


def _short(name: object) -> str:
    text = name if isinstance(name, str) and name.isprintable() else repr(name)
    return text if len(text) <= 40 else text[:40] + "…"


class Encoder:
    """Turn keyword arguments into contract-valid JSON bytes, or raise ContractError.

    Parameters
    ----------
    event_ids
        Makes ``event_id`` values; defaults to :func:`~streamwatch.contract.ids.event_id_factory`.
    clock_ms
        Returns the current time in epoch milliseconds, used when an event
        has no timestamp.
    """

    def __init__(self, *, clock_ms: Callable[[], int], event_ids: Callable[[], str] | None = None) -> None:
        self.event_ids = event_ids or event_id_factory()
        self.clock_ms = clock_ms
        self._names: set[str] = set()
        self._heads: dict[tuple[str, str], Mapping[str, orjson.Fragment]] = {}

    @property
    def names(self) -> set[str]:
        """The names (model names, feature, segment and metadata keys) already checked: valid, whatever their use.

        Callers with a fast path of their own (the SDK) may skip checking a name found here.
        """
        return self._names

    def prediction_heads(self, model: Any, model_version: Any) -> Mapping[str, orjson.Fragment]:
        """The constant part of a prediction with ``status="ok"`` for ``model`` and ``model_version``, by variant.

        Each is a ready-made ``orjson.Fragment`` meant as the value of ``"type"``: it holds
        ``"prediction"`` and the members ``schema_version``, ``model``, ``model_version``,
        ``variant`` and ``status`` that follow it, serialised once. Empty when the names break
        the contract (the caller then takes :meth:`prediction`, which says why). Never raises.

        >>> enc = Encoder(clock_ms=lambda: 0)
        >>> orjson.dumps({"type": enc.prediction_heads("credit", "3.1")["canary"], "score": 0.5})
        b'{"type":"prediction","schema_version":1,"model":"credit","model_version":"3.1","variant":"canary","status":"ok","score":0.5}'
        >>> enc.prediction_heads("credit", None)
        {}
        """
        if type(model) is not str or type(model_version) is not str:
            return _NO_HEADS
        key = (model, model_version)
        heads = self._heads.get(key)
        if heads is not None:
            return heads
        try:
            self._name(model, "model")
            self._name(model_version, "model_version")
            names = b'"model":%b,"model_version":%b' % (orjson.dumps(model), orjson.dumps(model_version))
        except (ContractError, orjson.JSONEncodeError):
            return _NO_HEADS
        # A plain dict, not read-only: a mappingproxy's get() costs several times a dict's.
        heads = {
            variant: orjson.Fragment(
                b'"prediction","schema_version":%d,%b,"variant":"%b","status":"ok"' % (_V1, names, variant.encode())
            )
            for variant in sorted(_VARIANTS)
        }
        if len(self._heads) < _HEADS_CACHE_SIZE:
            self._heads[key] = heads
        return heads

    # -- events -----------------------------------------------------------------

    def prediction(
        self,
        model: str | None,
        model_version: str | None,
        request_id: str,
        latency_ms: float,
        features: Mapping[str, Any] | None = None,
        prediction: Any = None,
        score: float | None = None,
        variant: str = "production",
        status: str = "ok",
        error: Any = None,
        segments: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
        embeddings: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode a prediction event.

        Arguments may be passed by position in this order; the producer does so
        because binding 15 keywords twice costs more than the checks.

        ``embeddings`` maps a name to a flat sequence of numbers. A numpy array is sent at float32 precision,
        which embeddings have anyway, so that a 4,096-number one fits in an event; a list as it is. An event
        with embeddings is of schema version 2.
        """
        names = self._names
        # The common case is checked inline: every call here costs ~50 ns.
        if not (type(model) is str and model in names):
            self._name(model, "model")
        if not (type(model_version) is str and model_version in names):
            self._name(model_version, "model_version")
        if not (type(request_id) is str and 0 < len(request_id) <= MAX_ID_LENGTH and request_id.isprintable()):
            _id(request_id, "request_id")
        if not _member(variant, _VARIANTS):
            raise ContractError("variant", "must be 'production', 'canary' or 'shadow'")
        if not _member(status, _STATUSES):
            raise ContractError("status", "must be 'ok' or 'error'")
        if prediction is None:
            if status == "ok":
                raise ContractError("prediction", "required when status is 'ok'")
        elif type(prediction) is not int and type(prediction) is not str:
            prediction = _target(prediction, "prediction")
        if score is not None and not (type(score) in (float, int) and 0.0 <= score <= 1.0):
            raise ContractError("score", "must be a number between 0 and 1")
        if not (type(latency_ms) in (float, int) and 0.0 <= latency_ms < math.inf):
            raise ContractError("latency_ms", "must be a finite number >= 0")
        if features:
            if not (type(features) is dict and names.issuperset(features) and len(features) <= MAX_FEATURES):
                features = self._features(features, required=False)
            elif not _PLAIN.issuperset(map(type, features.values())):
                features = _plain_values(features)
        else:
            features = self._features(features, required=False)
        if segments:
            if not (
                type(segments) is dict
                and names.issuperset(segments)
                and len(segments) <= MAX_MAP_ENTRIES
                and _STR_ONLY.issuperset(map(type, segments.values()))
            ):
                segments = self._strings(segments, "segments")
        else:
            segments = {}
        body = {
            "type": "prediction",
            "schema_version": _V2 if embeddings else _V1,
            "event_id": self.event_ids() if event_id is None else _id(event_id, "event_id"),
            "request_id": request_id,
            "timestamp": self.clock_ms() if timestamp is None else self._timestamp(timestamp),
            "model": model,
            "model_version": model_version,
            "variant": variant,
            "features": features,
            "prediction": prediction,
            "score": score,
            "latency_ms": latency_ms,
            "status": status,
            "segments": segments,
        }
        if error is not None:
            body["error"] = _error_text(error)
        if metadata:
            body["metadata"] = self._strings(metadata, "metadata")
        if embeddings:
            body["embeddings"] = self._embeddings(embeddings)
        return self._dump(body)

    def features(
        self,
        *,
        model: str | None,
        features: Mapping[str, Any],
        model_version: str | None = None,
        request_id: str | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
    ) -> bytes:
        """Encode a feature event (features logged apart from a prediction)."""
        self._name(model, "model")
        body: dict[str, Any] = {
            "type": "feature",
            "schema_version": _V1,
            "event_id": self._event_id(event_id),
            "timestamp": self._timestamp(timestamp),
            "model": model,
            "features": self._features(features, required=True),
        }
        if model_version is not None:
            self._name(model_version, "model_version")
            body["model_version"] = model_version
        if request_id is not None:
            body["request_id"] = _id(request_id, "request_id")
        return self._dump(body)

    def label(
        self, *, model: str | None, request_id: str, label: Any, timestamp: Any = None, event_id: str | None = None
    ) -> bytes:
        """Encode a label (ground-truth) event."""
        self._name(model, "model")
        _id(request_id, "request_id")
        return self._dump(
            {
                "type": "label",
                "schema_version": _V1,
                "event_id": self._event_id(event_id),
                "request_id": request_id,
                "timestamp": self._timestamp(timestamp),
                "model": model,
                "label": _target(label, "label"),
            }
        )

    # -- checks -----------------------------------------------------------------

    def _name(self, value: Any, field: str) -> None:
        if type(value) is str and value in self._names:
            return
        _bounded_string(value, field, MAX_NAME_LENGTH)
        if len(self._names) < _NAME_CACHE_SIZE:
            self._names.add(value)

    def _keys(self, mapping: Mapping[str, Any], field: str, limit: int) -> None:
        if len(mapping) > limit:
            raise ContractError(field, f"at most {limit} entries allowed")
        keys = mapping.keys()
        if keys <= self._names:
            return
        for key in keys:
            if type(key) is not str:
                raise ContractError(field, f"names must be strings, not {type(key).__name__}")
            self._name(key, f"{field}.{_short(key)} (the name)")

    def _features(self, features: Mapping[str, Any] | None, *, required: bool) -> Mapping[str, Any]:
        if features is None or (not features and not required):
            if required:
                raise ContractError("features", "at least one feature is required")
            return {}
        if type(features) is not dict:
            if not isinstance(features, Mapping):
                raise ContractError("features", f"must be a mapping, not {type(features).__name__}")
            features = dict(features)
        if required and not features:
            raise ContractError("features", "at least one feature is required")
        self._keys(features, "features", MAX_FEATURES)
        if not _PLAIN.issuperset(map(type, features.values())):
            features = _plain_values(features)
        return features

    def _strings(self, mapping: Mapping[str, str] | None, field: str) -> Mapping[str, str]:
        if not mapping:
            return {}
        if not isinstance(mapping, Mapping):
            raise ContractError(field, f"must be a mapping, not {type(mapping).__name__}")
        self._keys(mapping, field, MAX_MAP_ENTRIES)
        if not _STR_ONLY.issuperset(map(type, mapping.values())):
            for key, value in mapping.items():
                if type(value) is not str:
                    raise ContractError(f"{field}.{_short(key)}", f"must be a string, not {type(value).__name__}")
        return mapping

    def _embeddings(self, embeddings: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(embeddings, Mapping):
            raise ContractError("embeddings", f"must be a mapping, not {type(embeddings).__name__}")
        self._keys(embeddings, "embeddings", MAX_EMBEDDINGS)
        return {name: _embedding(vector, f"embeddings.{_short(name)}") for name, vector in embeddings.items()}

    def _event_id(self, event_id: str | None) -> str:
        return self.event_ids() if event_id is None else _id(event_id, "event_id")

    def _timestamp(self, value: Any) -> int:
        if value is None:
            return self.clock_ms()
        if type(value) is int:
            ms = value
        elif isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ContractError("timestamp", "datetime must be timezone-aware (e.g. datetime.now(UTC))")
            ms = (value - _EPOCH) // _MS
        else:
            raise ContractError(
                "timestamp", f"must be epoch milliseconds (int) or an aware datetime, not {type(value).__name__}"
            )
        if not MIN_TIMESTAMP_MS <= ms <= MAX_TIMESTAMP_MS:
            raise ContractError("timestamp", "out of range (1970 to 9999)")
        return ms

    def _dump(self, body: dict[str, Any]) -> bytes:
        try:
            # (numpy only where the encoder put it: the embeddings' float32 arrays)
            payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY if "embeddings" in body else None)
        except orjson.JSONEncodeError as exc:
            # orjson refuses integers outside 64 bits (exactly the contract's
            # range) and strings that are not valid Unicode (lone surrogates).
            raise _unencodable(body, str(exc)) from None
        size = len(payload)
        if size > MAX_STRING_LENGTH:
            # Only a payload longer than the string limit can hold a too-long string.
            if size > MAX_EVENT_BYTES:
                raise ContractError("event", f"{size} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
            _check_string_lengths(body)
        return payload


def _embedding(vector: Any, field: str) -> Any:
    """A numpy array as float32 (orjson writes it natively, float32's shortest text), or a list of numbers as
    given. numpy itself is never imported here: an inference service that sends none does not load it."""
    if type(vector).__module__ == "numpy" and hasattr(vector, "dtype"):
        if vector.dtype.kind not in "iuf" or vector.ndim != 1:  # (booleans are no numbers to the contract)
            raise ContractError(field, "must be a flat sequence of numbers")
        _dimensions(vector.size, field)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # past float32's range is inf: refused just below
            vector = vector.astype("float32")
        if not math.isfinite(float(vector.sum(dtype="float64"))):  # NaN and inf survive a sum
            raise ContractError(field, "must be finite numbers (within float32's range)")
        return vector
    if isinstance(vector, str | bytes) or not isinstance(vector, Sequence):
        raise ContractError(field, "must be a flat sequence of numbers")
    values = list(vector)
    _dimensions(len(values), field)
    if not _NUMBERS.issuperset(map(type, values)):
        raise ContractError(field, "must be a flat sequence of numbers")
    # A sum is one C loop; only when it is not finite (a NaN, an inf, or finite numbers overflowing) look closer.
    if not math.isfinite(sum(values)) and not all(map(math.isfinite, values)):
        raise ContractError(field, "must be finite numbers")
    return values


def _dimensions(size: int, field: str) -> None:
    if not 1 <= size <= MAX_EMBEDDING_DIMS:
        raise ContractError(field, f"must hold 1 to {MAX_EMBEDDING_DIMS} numbers, not {size}")


def _member(value: Any, allowed: frozenset[str]) -> bool:
    try:
        return value in allowed
    except TypeError:  # unhashable: certainly not one of them
        return False


def strings_fit(features: Mapping[str, Any], segments: Mapping[str, Any], prediction: Any) -> bool:
    """Whether every string value is within the limit: only a payload longer than the limit needs asking."""
    try:
        _check_string_lengths({"features": features, "segments": segments, "prediction": prediction})
    except ContractError:
        return False
    return True


def _bounded_string(value: Any, field: str, limit: int) -> str:
    """The rule names and ids share: a string of 1 to ``limit`` characters, no control characters."""
    if type(value) is not str:
        raise ContractError(field, f"must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= limit:
        raise ContractError(field, f"must be 1 to {limit} characters")
    if not value.isprintable() and _CONTROL.search(value):
        raise ContractError(field, "must contain no control characters")
    return value


def _id(value: Any, field: str) -> str:
    return _bounded_string(value, field, MAX_ID_LENGTH)


def _target(value: Any, field: str) -> Any:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ContractError(field, "must be a finite number")
        return value
    if kind is int:
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise ContractError(field, "integer does not fit in 64 bits")
        return value
    if kind is str or kind is bool:
        return value
    plain = _plain(value)
    if plain is _REJECT or plain is None:
        raise ContractError(field, f"must be a number, string or boolean, not {kind.__name__}")
    return _target(plain, field)


_REJECT = object()


def _plain(value: Any) -> Any:
    """Map numpy scalars and subclasses of int/float/str/bool to plain Python values."""
    if value is None or type(value) in _PLAIN:
        return value
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        value = item()
        return value if type(value) in _PLAIN else _REJECT
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    return _REJECT


def _plain_values(features: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in features.items():
        value = _plain(value)
        if value is _REJECT:
            kind = type(features[key]).__name__
            raise ContractError(f"features.{_short(key)}", f"must be a number, string, boolean or null, not {kind}")
        out[key] = value
    return out


def _error_text(error: Any) -> str:
    # Inference code passes exceptions; their text is not under its control,
    # so it is cut to the limit rather than rejected.
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:MAX_STRING_LENGTH]


def _unencodable(body: Mapping[str, Any], reason: str) -> ContractError:
    for field in ("features", "segments", "metadata"):
        for key, value in body.get(field, {}).items():
            if type(value) is int and not MIN_INTEGER <= value <= MAX_INTEGER:
                return ContractError(f"{field}.{_short(key)}", "integer does not fit in 64 bits")
    return ContractError("event", f"cannot be serialised as JSON ({reason})")


def _check_string_lengths(body: Mapping[str, Any]) -> None:
    for field in ("features", "segments", "metadata"):
        for key, value in body.get(field, {}).items():
            if type(value) is str and len(value) > MAX_STRING_LENGTH:
                raise ContractError(f"{field}.{_short(key)}", f"string longer than {MAX_STRING_LENGTH} characters")
    for field in ("prediction", "label"):
        value = body.get(field)
        if type(value) is str and len(value) > MAX_STRING_LENGTH:
            raise ContractError(field, f"string longer than {MAX_STRING_LENGTH} characters")
