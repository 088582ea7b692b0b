"""Checkpoints and partials as bytes: an explicit, versioned format of plain data.

A worker's checkpoint (a stage's or the reporter's state) and every partial
aggregate it stores are written by :func:`dumps` and read back by
:func:`loads`. The bytes hold plain data only, so reading a blob never runs
code that the blob chooses.

The format
----------
Header
    ``b"SWS"``, one byte for the format version (:data:`FORMAT_VERSION`, now 6)
    and the CRC-32 of the body (4 bytes, big-endian; from version 5 on, of the
    version byte then the body): a truncated or altered blob is refused before
    it is read. The header keeps this layout in every version.
Body
    One MessagePack array ``[types, root]`` (msgspec). ``types`` lists each
    registered class the blob holds as ``[stable name, [field, ...]]``;
    ``root`` is the state. Strings, floats, booleans, ``None``, bytes and
    64-bit integers are MessagePack's own; everything else is an array whose
    first item is a small integer tag: a tuple, list, dict (any keys), set,
    frozenset, OrderedDict, defaultdict (of ``int``, ``float``, ``list``, ``set``
    or ``dict``), deque (with its maxlen), an integer beyond 64 bits, a numpy
    array (dtype from an allow-list, shape, raw little-endian bytes), a numpy
    scalar, an object of a registered class (``[tag, type index, *fields]``),
    a reference profile, or a reference to something already written (shared
    objects stay shared: the SLO that every window's SLI counts share is
    written once).
Registry
    :data:`REGISTRY` maps stable names (``"core.NumericHistogram"``) to classes
    and the fields written for them. The names do not depend on module paths:
    a class can move without breaking a checkpoint. Decoding builds only these
    classes (``cls.__new__`` and their declared fields, or the class's own
    state hooks for the few that have them: river's ADWIN, ``random.Random``,
    pydantic models), plus the containers above. Writing an object of any
    other class, or one with an attribute its entry does not declare, raises
    :class:`StateFormatError` naming it.
Reference profiles
    A :class:`~streamwatch.profiles.model.ReferenceProfile` is large and the
    same for every window of a model version, so it is written as its
    ``(model, version, content sha256)`` only; :func:`loads` points the state
    back at the profile the worker loaded. A checkpoint made against a profile
    that is no longer loaded cannot be restored, and says so
    (:class:`ProfileNotLoadedError`).

A bad blob (wrong magic, a version this code does not know, truncated or
altered bytes, an unknown type name, a dtype off the allow-list, fields that
do not match) raises :class:`StateFormatError` saying what is wrong. The
runtime then logs it and carries on without that blob: a partition whose
checkpoint cannot be read starts afresh from the earliest offsets Kafka keeps,
and the reporter skips a partial it cannot read.

Adding a type
    Register it in ``_register_builtin_types`` below (its fields in ``_FIELDS``;
    a dataclass declares its own), or call :func:`register` at import time:
    a new stable name, the class, its fields. Attributes derived from others
    (a bound method, say) are listed in ``derived`` and set again by ``rebuild``.
    Classes of packages the pipeline may not import (alerting's) are named in
    ``_ELSEWHERE`` and imported when first met.
Changing a type or the layout
    A checkpoint records the field names of each class it holds, and reading
    refuses one whose fields differ from the registry's. To change them, bump
    :data:`FORMAT_VERSION` and add a function to ``_MIGRATIONS`` that turns a
    body of the old version into one of the next (it gets and returns the
    decoded MessagePack, before any object is built). Keep
    ``tests/pipeline/fixtures/checkpoint-v1.bin``: the test that reads it
    checks that old checkpoints still restore.

>>> from streamwatch.profiles.model import Lineage, build_profile
>>> import numpy as np
>>> lineage = Lineage(model="m", model_version="1", data_uri="x", rows=3, content_sha256="0" * 64,
...                   created_at="2026-01-01T00:00:00Z", streamwatch_version="0")
>>> profile = build_profile({"f": np.array([1.0, 2.0, 3.0])}, lineage=lineage)
>>> blob = dumps({"profile": profile, "n": 1, ("a", 2): {3.5, None}})
>>> blob[:4]
b'SWS\\x06'
>>> state = loads(blob, {("m", "1"): profile})
>>> state["profile"] is profile, state[("a", 2)] == {3.5, None}
(True, True)
>>> loads(b"SWS\\x09" + blob[4:], {})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamwatch.pipeline.state.StateFormatError: state written in format version 9, by a newer streamwatch; ...
>>> loads(blob[:-5], {})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamwatch.pipeline.state.StateFormatError: state of ... bytes fails its CRC-32 check: truncated or altered
"""

from __future__ import annotations

import dataclasses
import gc
import math
import random
import zlib
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Final

import msgspec
import numpy as np
from pydantic import BaseModel, ValidationError
from river._river_rust.drift import AdaptiveWindowing
from river.drift import ADWIN, KSWIN, PageHinkley
from river.stats import Mean

from streamwatch.contract.events import AlertEvent
from streamwatch.core.categories import CategoryCounts
from streamwatch.core.change import ChangeDetector
from streamwatch.core.confusion import ConfusionCounts, Counts
from streamwatch.core.divergence import Divergence, TwinJoin
from streamwatch.core.embedding import COUNTS_FIELDS as EMBEDDING_FIELDS
from streamwatch.core.embedding import EmbeddingCounts
from streamwatch.core.estimation import EstimateCounts
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.join import LabelJoin, _Label
from streamwatch.core.latency import LatencySketch
from streamwatch.core.multiclass import FIELDS as MULTICLASS_FIELDS
from streamwatch.core.multiclass import MulticlassAggregates
from streamwatch.core.multivariate import COUNTS_FIELDS as RECONSTRUCTION_FIELDS
from streamwatch.core.multivariate import SLICE_COUNTS_FIELDS as SLICE_RECONSTRUCTION_FIELDS
from streamwatch.core.multivariate import ReconstructionCounts, SliceReconstructionCounts
from streamwatch.core.performance import PerformanceAggregates, RegressionAggregates
from streamwatch.core.scores import ScoreHistogram
from streamwatch.core.slo import SLO, SLICounts
from streamwatch.core.slo_history import SLOHistory
from streamwatch.errors import StreamwatchError
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.profiles.model import ReferenceProfile

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "REGISTRY",
    "ProfileNotLoadedError",
    "StateFormatError",
    "StateType",
    "dumps",
    "loads",
    "register",
]

MAGIC: Final = b"SWS"
_HEADER: Final = 8  # magic, version, CRC-32 of the body
#: The version :func:`dumps` writes; :func:`loads` reads it and every older one ``_MIGRATIONS`` upgrades.
FORMAT_VERSION: Final = 6


class StateFormatError(StreamwatchError, ValueError):
    """Bytes that are not a state this code can read (or a state it cannot write), and why."""


class ProfileNotLoadedError(StreamwatchError):
    """A checkpoint refers to a reference profile that this worker has not loaded."""


# The first item of every array in the body: what the array stands for.
_TUPLE: Final = 0
_LIST: Final = 1
_DICT: Final = 2  # [tag, key, value, key, value, ...]
_SET: Final = 3
_FROZENSET: Final = 4
_ORDERED_DICT: Final = 5
_DEFAULT_DICT: Final = 6  # [tag, factory name, key, value, ...]
_DEQUE: Final = 7  # [tag, maxlen or None, item, ...]
_BIG_INT: Final = 8  # [tag, signed big-endian bytes]
_ARRAY: Final = 9  # [tag, dtype, shape, bytes]
_NUMPY_SCALAR: Final = 10  # [tag, dtype, bytes]
_OBJECT: Final = 11  # [tag, type index, field value, ...]
_PROFILE: Final = 12  # [tag, model, version, content sha256]
_REF: Final = 13  # [tag, index of an earlier list, dict, set, deque, array, object or profile]


_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1
_MAX_BIG_INT_BYTES: Final = 4096
_MAX_DIMENSIONS: Final = 32
#: The numpy dtypes an array or scalar may have: numbers and booleans, little-endian (never ``object``).
_DTYPES: Final[frozenset[str]] = frozenset(
    {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"}
)
_NUMPY_SCALARS: Final[frozenset[type]] = frozenset(np.dtype(d).type for d in _DTYPES)
_FACTORIES: Final[Mapping[str, type]] = {"int": int, "float": float, "list": list, "set": set, "dict": dict}
_SCALARS: Final[frozenset[type]] = frozenset({str, float, bool, type(None), bytes})
_PLAIN: Final[frozenset[type]] = _SCALARS | {int}  # what MessagePack holds as it is
_PENDING: Final = object()  # a memo slot whose object is still being built


# -- the registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateType:
    """How one class is written: its stable ``name``, its ``fields``, and hooks for the few that need them.

    ``derived`` attributes are not written; ``rebuild(obj)`` sets them again once
    the fields are. A class whose state lives outside Python attributes (a Rust
    object, a pydantic model) gives ``dump(obj) -> field values`` and
    ``build(values) -> obj`` instead.
    """

    name: str
    cls: type
    fields: tuple[str, ...]
    derived: tuple[str, ...] = ()
    # Any: hooks take instances of their own class, which differs per entry.
    rebuild: Callable[[Any], None] | None = None
    dump: Callable[[Any], list[object]] | None = None
    build: Callable[[list[Any]], object] | None = None
    #: Whether instances keep their fields in ``__dict__`` (else in slots).
    has_dict: bool = dataclasses.field(init=False)
    #: Every attribute an instance has: fields and derived ones.
    attributes: frozenset[str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_dict", self.dump is None and self.cls.__dictoffset__ != 0)
        object.__setattr__(self, "attributes", frozenset(self.fields) | frozenset(self.derived))


#: Stable name -> how that class is written. See :func:`register`.
REGISTRY: dict[str, StateType] = {}
_BY_CLASS: dict[type, StateType] = {}


def register(
    name: str,
    cls: type,
    fields: Sequence[str] | None = None,
    *,
    derived: Sequence[str] = (),
    rebuild: Callable[[Any], None] | None = None,
    dump: Callable[[Any], list[object]] | None = None,
    build: Callable[[list[Any]], object] | None = None,
) -> StateType:
    """Allow objects of ``cls`` in states, under the stable ``name``; a dataclass's fields are its own."""
    if fields is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__qualname__} is not a dataclass: name its fields")
        fields = [f.name for f in dataclasses.fields(cls)]
    entry = StateType(name, cls, tuple(fields), tuple(derived), rebuild, dump, build)
    known = REGISTRY.get(name)
    if known is not None and known.cls is not cls:
        raise ValueError(f"state type name {name!r} is already taken by {known.cls.__qualname__}")
    REGISTRY[name] = entry
    _BY_CLASS[cls] = entry
    return entry


def _entry_for_name(name: str) -> StateType | None:
    return REGISTRY.get(name)


def _entry_for_class(cls: type) -> StateType | None:
    return _BY_CLASS.get(cls)


def _rebuild_category_counts(counts: CategoryCounts) -> None:
    counts._lookup = counts._index.get


def _rebuild_page_hinkley(detector: PageHinkley) -> None:
    if detector.mode not in detector._VALID_MODES:
        raise StateFormatError(f"river.PageHinkley: unknown mode {detector.mode!r}")
    tests = {detector._MODE_UP: detector._test_increase, detector._MODE_DOWN: detector._test_decrease}
    detector._test_drift = tests.get(detector.mode, detector._test_both)  # as river's _reset does


def _dump_adaptive_windowing(window: AdaptiveWindowing) -> list[object]:
    # Rust inside: its constructor's arguments and river's own serialization of its buckets.
    return [list(window.__getnewargs__()), window.__getstate__()]


def _build_adaptive_windowing(values: list[Any]) -> AdaptiveWindowing:
    arguments, buckets = values
    if (
        not isinstance(arguments, list)
        or len(arguments) != 5
        or not all(type(a) in (int, float) for a in arguments)
        or type(buckets) is not bytes
    ):
        raise StateFormatError("river.AdaptiveWindowing: expected five numbers and bytes")
    try:
        window = AdaptiveWindowing(*arguments)
        window.__setstate__(buckets)
    except Exception as exc:
        raise StateFormatError(f"river.AdaptiveWindowing: river refused its state ({exc})") from None
    except BaseException as exc:  # a Rust panic (pyo3's PanicException derives from BaseException)
        if type(exc).__name__ != "PanicException":
            raise
        raise StateFormatError("river.AdaptiveWindowing: river could not read its state") from None
    return window


def _build_random(values: list[Any]) -> random.Random:
    generator = random.Random()
    generator.setstate(values[0])  # checks the version and the length and type of the state
    return generator


def _dump_model(model: BaseModel) -> list[object]:
    return [model.model_dump(mode="json")]


def _model_builder(cls: type[BaseModel]) -> Callable[[list[Any]], object]:
    def build(values: list[Any]) -> object:
        return cls.model_validate(values[0])

    return build


# -- the joins, packed -------------------------------------------------------------------------------
# A stage's label join holds every prediction waiting for its label (up to a million) and its twin
# join every recent request: written object by object they cost ~5 µs an entry, ~10 s for a full
# join, more than the interval between checkpoints. Their entries are tuples of plain values, so
# msgspec writes them whole in C (~0.3 µs an entry) as one bytes field, read back into the same tuples.
# (The contract bounds integers to 64 bits, which MessagePack holds.)

_PACKED_JOIN = ("settings", "counters", "predictions", "labels")
_PACKED_TWINS = ("max_pending", "evicted", "pending")


def _same_attributes(obj: object, name: str) -> None:
    """A packed class must still have exactly the attributes it had (its format says what each becomes)."""
    extra = sorted(obj.__dict__.keys() - set(_FIELDS[name]))
    missing = sorted(set(_FIELDS[name]) - obj.__dict__.keys())
    if extra or missing:
        raise StateFormatError(
            f"cannot write a {name}: attributes {extra} are not registered fields"
            if extra
            else f"cannot write a {name}: it lacks fields {missing}"
        )


def _join_counters() -> tuple[str, ...]:
    """The label join's counters: its registered fields past its settings and its two containers."""
    kept = ("horizon_ms", "max_pending", "clock_skew_ms", "_predictions", "_labels")
    return tuple(f for f in _FIELDS["core.LabelJoin"] if f not in kept)


def _dump_join(join: LabelJoin) -> list[object]:
    _same_attributes(join, "core.LabelJoin")
    predictions = list(join._predictions.items())  # [(model, request id), (packed prediction, ...)]
    labels = [(key, label.label, label.timestamp_ms, label.matched) for key, label in join._labels.items()]
    return [
        [join.horizon_ms, join.max_pending, join.clock_skew_ms],
        [getattr(join, name) for name in _join_counters()],
        msgspec.msgpack.encode(predictions),
        msgspec.msgpack.encode(labels),
    ]


def _unpack_prediction(p: list[Any]) -> tuple[Any, ...]:
    timestamp, version, variant, prediction, score, segments = p
    return (timestamp, version, variant, prediction, score, tuple(tuple(s) for s in segments))


def _build_join(values: list[Any]) -> LabelJoin:
    settings, counters, predictions, labels = values
    try:
        join = LabelJoin(*settings)
        names = _join_counters()
        if len(counters) != len(names):
            raise ValueError("wrong number of counters")
        for name, value in zip(names, counters, strict=True):
            setattr(join, name, int(value))
        join._predictions = OrderedDict(
            (tuple(key), tuple(_unpack_prediction(p) for p in packed))
            for key, packed in msgspec.msgpack.decode(predictions)
        )
        join._labels = OrderedDict(
            (tuple(key), _Label(label, int(at), bool(matched)))
            for key, label, at, matched in msgspec.msgpack.decode(labels)
        )
    except (TypeError, ValueError, msgspec.DecodeError) as exc:
        raise StateFormatError(f"core.LabelJoin.packed: {exc}") from None
    return join


def _dump_twins(twins: TwinJoin) -> list[object]:
    _same_attributes(twins, "core.TwinJoin")
    return [
        twins.max_pending,
        twins.evicted,
        msgspec.msgpack.encode(list(twins._pending.items())),
    ]


def _build_twins(values: list[Any]) -> TwinJoin:
    max_pending, evicted, pending = values
    try:
        twins = TwinJoin(int(max_pending))
        twins.evicted = int(evicted)
        twins._pending = OrderedDict(
            (tuple(key), tuple(tuple(answer) for answer in answers)) for key, answers in msgspec.msgpack.decode(pending)
        )
    except (TypeError, ValueError, msgspec.DecodeError) as exc:
        raise StateFormatError(f"core.TwinJoin.packed: {exc}") from None
    return twins


def _register_builtin_types() -> None:
    def plain(
        name: str, cls: type, *, derived: Sequence[str] = (), rebuild: Callable[[Any], None] | None = None
    ) -> None:
        # A plain class's fields are the attributes its __init__ sets. They are spelled out in _FIELDS, so
        # that a class that gains or loses one fails to write until this format says what to do about it.
        register(name, cls, _FIELDS[name], derived=derived, rebuild=rebuild)

    plain("core.NumericHistogram", NumericHistogram)
    plain("core.CategoryCounts", CategoryCounts, derived=["_lookup"], rebuild=_rebuild_category_counts)
    plain("core.LatencySketch", LatencySketch)
    plain("core.ScoreHistogram", ScoreHistogram)
    plain("core.ConfusionCounts", ConfusionCounts)
    register("core.Counts", Counts)
    plain("core.PerformanceAggregates", PerformanceAggregates)
    plain("core.EstimateCounts", EstimateCounts)
    plain("core.MulticlassAggregates", MulticlassAggregates)
    plain("core.RegressionAggregates", RegressionAggregates)
    register("core.SLO", SLO)
    plain("core.SLICounts", SLICounts)
    plain("core.SLOHistory", SLOHistory)
    plain("core.ChangeDetector", ChangeDetector)
    plain("core.Divergence", Divergence)
    plain("core.TwinJoin", TwinJoin)  # (as versions 1 and 2 wrote it: still read)
    plain("core.LabelJoin", LabelJoin)  # (the same)
    register("core.LabelJoin.Label", _Label)
    # Since version 3 the joins, a checkpoint's bulk, are written as one MessagePack blob each (in C).
    register("core.TwinJoin.packed", TwinJoin, _PACKED_TWINS, dump=_dump_twins, build=_build_twins)
    register("core.LabelJoin.packed", LabelJoin, _PACKED_JOIN, dump=_dump_join, build=_build_join)
    plain(
        "pipeline.WindowAggregates",
        WindowAggregates,
        derived=["_reconstruction", "_embedding_references"],
        rebuild=WindowAggregates.rebuild,
    )
    plain("core.ReconstructionCounts", ReconstructionCounts)
    plain("core.EmbeddingCounts", EmbeddingCounts)
    plain("core.SliceReconstructionCounts", SliceReconstructionCounts)
    plain("pipeline.PartialMerger", PartialMerger)
    register("contract.AlertEvent", AlertEvent, ["data"], dump=_dump_model, build=_model_builder(AlertEvent))
    plain("river.PageHinkley", PageHinkley, derived=["_test_drift"], rebuild=_rebuild_page_hinkley)
    plain("river.ADWIN", ADWIN)
    plain("river.KSWIN", KSWIN)
    plain("river.Mean", Mean)
    register(
        "river.AdaptiveWindowing",
        AdaptiveWindowing,
        ["arguments", "buckets"],
        dump=_dump_adaptive_windowing,
        build=_build_adaptive_windowing,
    )
    register("python.Random", random.Random, ["state"], dump=lambda r: [r.getstate()], build=_build_random)


_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "core.NumericHistogram": ("edges", "_counts", "_missing", "_min", "_max"),
    "core.CategoryCounts": ("categories", "_index", "_counts", "_missing"),
    "core.LatencySketch": (
        "relative_accuracy",
        "_gamma",
        "_log_gamma",
        "_offset",
        "_counts",
        "_zeros",
        "_missing",
        "_min",
        "_max",
    ),
    "core.ScoreHistogram": ("bins", "_counts", "_missing"),
    "core.ConfusionCounts": ("slices", "max_slices_per_key", "_overall", "_slices", "_overflow"),
    "core.PerformanceAggregates": (
        "positive_label",
        "confusion",
        "scores",
        "_log_loss_units",
        "_scored",
        "score_edges",
        "estimate",
        "estimate_correct",
    ),
    "core.MulticlassAggregates": MULTICLASS_FIELDS,
    "core.ReconstructionCounts": RECONSTRUCTION_FIELDS,
    "core.EmbeddingCounts": EMBEDDING_FIELDS,
    "core.SliceReconstructionCounts": SLICE_RECONSTRUCTION_FIELDS,
    "core.EstimateCounts": ("cells", "slices", "max_slices_per_key", "_overall", "_slices", "_overflow"),
    "core.RegressionAggregates": ("n", "_error", "_absolute", "_squared"),
    "core.SLICounts": ("slo", "_good", "_total"),
    "core.SLOHistory": ("slo", "window_ms", "_starts", "_good", "_total"),
    "core.ChangeDetector": ("detector", "params", "_river", "_detections", "_fired"),
    "core.Divergence": (
        "pairs",
        "agreements",
        "_scored",
        "_shift_units",
        "_abs_units",
        "production_latency",
        "challenger_latency",
    ),
    "core.TwinJoin": ("max_pending", "_pending", "evicted"),
    "core.LabelJoin": (
        "horizon_ms",
        "max_pending",
        "clock_skew_ms",
        "_predictions",
        "_labels",
        "_npredictions",
        "matched_predictions",
        "unlabelled",
        "evicted_predictions",
        "matched_labels",
        "early_labels",
        "late_labels",
        "orphan_labels",
        "duplicate_labels",
        "evicted_labels",
    ),
    "pipeline.WindowAggregates": (
        "profile",
        "sli",
        "features",
        "out_of_range",
        "type_mismatch",
        "unknown_features",
        "score",
        "prediction",
        "estimate",
        "multivariate",
        "multivariate_slices",
        "embeddings",
        "projections",
        "embedding_wrong_length",
        "latency",
        "requests",
        "errors",
        "examples",
    ),
    "pipeline.PartialMerger": (
        "window_ms",
        "merge",
        "late_partials",
        "_watermarks",
        "_idle",
        "_parts",
        "_touched",
        "_released",
    ),
    "river.PageHinkley": (
        "_drift_detected",
        "min_instances",
        "delta",
        "threshold",
        "alpha",
        "mode",
        "_x_mean",
        "_sum_increase",
        "_sum_decrease",
        "_min_increase",
        "_max_decrease",
    ),
    "river.ADWIN": ("_drift_detected", "delta", "clock", "max_buckets", "min_window_length", "grace_period", "_helper"),
    "river.KSWIN": ("_drift_detected", "alpha", "window_size", "stat_size", "seed", "p_value", "n", "window", "_rng"),
    "river.Mean": ("n", "_mean"),
}

_register_builtin_types()


# -- writing -----------------------------------------------------------------------------------------


class _Encoder:
    """Turns a state into nested lists of MessagePack values (see the module docstring).

    ``plain`` are the types written as they are. With ``int`` among them (the
    fast path) an integer beyond 64 bits makes msgspec raise OverflowError, and
    :func:`dumps` writes the state again without it, checking every integer.
    Containers whose items are all plain are copied in C, not item by item.
    """

    def __init__(self, plain: frozenset[type]) -> None:
        self.plain = plain
        self.memo: dict[int, int] = {}
        self.keep: list[object] = []  # what the memo's ids stand for, alive until the end
        self.type_index: dict[str, int] = {}
        self.types: list[list[object]] = []
        self.handlers: dict[type, Callable[[Any], object]] = {
            tuple: self.write_tuple,
            list: self.write_list,
            dict: self.write_dict,
            set: self.write_set,
            frozenset: self.write_frozenset,
            OrderedDict: self.write_ordered_dict,
            defaultdict: self.write_default_dict,
            deque: self.write_deque,
            np.ndarray: self.write_array,
            ReferenceProfile: self.write_profile,
        }

    def encode(self, obj: object) -> object:
        kind = type(obj)
        if kind in self.plain:
            return obj
        if kind is tuple:  # the bulk of a checkpoint: written here, without a call per tuple
            items: tuple[object, ...] = obj  # type: ignore[assignment]  # narrowed by the exact type check above
            plain = self.plain
            if plain.issuperset(map(type, items)):
                return [_TUPLE, *items]
            encode = self.encode
            return [_TUPLE, *[v if type(v) in plain else encode(v) for v in items]]
        if kind is int:
            value: int = obj  # type: ignore[assignment]  # narrowed by the exact type check above
            if _INT64_MIN <= value <= _UINT64_MAX:
                return value
            return [_BIG_INT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)]
        handler = self.handlers.get(kind)
        if handler is not None:
            return handler(obj)
        if kind in _NUMPY_SCALARS:
            scalar: np.generic = obj  # type: ignore[assignment]  # narrowed by the type check above
            return [_NUMPY_SCALAR, scalar.dtype.str, scalar.tobytes()]
        entry = _entry_for_class(kind)
        if entry is None:
            raise StateFormatError(
                f"cannot write a {kind.__module__}.{kind.__qualname__}: the class is not registered "
                "in streamwatch.pipeline.state.REGISTRY"
            )
        return self.write_object(obj, entry)

    def _seen(self, obj: object) -> list[object] | None:
        """A reference if ``obj`` was written already; otherwise note it and return None."""
        index = self.memo.get(id(obj))
        if index is not None:
            return [_REF, index]
        self.memo[id(obj)] = len(self.keep)
        self.keep.append(obj)
        return None

    def _sequence(self, head: list[object], items: Iterable[object]) -> list[object]:
        plain = self.plain
        if plain.issuperset(map(type, items)):  # the common case, in C
            head.extend(items)
            return head
        encode = self.encode
        head.extend([v if type(v) in plain else encode(v) for v in items])
        return head

    def write_tuple(self, obj: tuple[object, ...]) -> object:
        return self._sequence([_TUPLE], obj)

    def write_list(self, obj: list[object]) -> object:
        return self._seen(obj) or self._sequence([_LIST], obj)

    def write_set(self, obj: set[object]) -> object:
        return self._seen(obj) or self._sequence([_SET], obj)

    def write_frozenset(self, obj: frozenset[object]) -> object:
        return self._sequence([_FROZENSET], obj)

    def write_deque(self, obj: deque[object]) -> object:
        return self._seen(obj) or self._sequence([_DEQUE, obj.maxlen], obj)

    def _items(self, head: list[object], obj: Mapping[object, object]) -> list[object]:
        plain = self.plain
        if plain.issuperset(map(type, obj)) and plain.issuperset(map(type, obj.values())):
            head.extend(chain.from_iterable(obj.items()))
            return head
        encode = self.encode
        for key, value in obj.items():
            head.append(key if type(key) in plain else encode(key))
            head.append(value if type(value) in plain else encode(value))
        return head

    def write_dict(self, obj: dict[object, object]) -> object:
        return self._seen(obj) or self._items([_DICT], obj)

    def write_ordered_dict(self, obj: OrderedDict[object, object]) -> object:
        return self._seen(obj) or self._items([_ORDERED_DICT], obj)

    def write_default_dict(self, obj: defaultdict[object, object]) -> object:
        factory = obj.default_factory
        name = getattr(factory, "__name__", repr(factory))
        if _FACTORIES.get(name) is not factory:
            raise StateFormatError(f"cannot write a defaultdict of {name}: only of {', '.join(_FACTORIES)}")
        return self._seen(obj) or self._items([_DEFAULT_DICT, name], obj)

    def write_array(self, obj: np.ndarray[Any, np.dtype[Any]]) -> object:
        if obj.dtype.str not in _DTYPES:
            raise StateFormatError(f"cannot write a numpy array of dtype {obj.dtype.str!r}: not in the allow-list")
        return self._seen(obj) or [_ARRAY, obj.dtype.str, list(obj.shape), obj.tobytes()]

    def write_profile(self, obj: ReferenceProfile) -> object:
        lineage = obj.lineage
        return self._seen(obj) or [_PROFILE, lineage.model, lineage.model_version, lineage.content_sha256]

    def write_object(self, obj: object, entry: StateType) -> object:
        seen = self._seen(obj)
        if seen is not None:
            return seen
        index = self.type_index.get(entry.name)
        if index is None:
            index = self.type_index[entry.name] = len(self.types)
            self.types.append([entry.name, list(entry.fields)])
        if entry.dump is not None:
            values = entry.dump(obj)
        elif entry.has_dict:
            attributes = obj.__dict__
            if attributes.keys() != entry.attributes:
                extra = sorted(attributes.keys() - entry.attributes)
                missing = sorted(entry.attributes - attributes.keys())
                raise StateFormatError(
                    f"cannot write a {entry.name}: attributes {extra} are not registered fields"
                    if extra
                    else f"cannot write a {entry.name}: it lacks fields {missing}"
                )
            values = [attributes[f] for f in entry.fields]
        else:
            try:
                values = [getattr(obj, f) for f in entry.fields]
            except AttributeError as exc:
                raise StateFormatError(f"cannot write a {entry.name}: {exc}") from None
        out: list[object] = [_OBJECT, index]
        for field, value in zip(entry.fields, values, strict=True):
            try:
                out.append(self.encode(value))
            except StateFormatError as exc:
                raise StateFormatError(f"{exc} (in {entry.name}.{field})") from None
        return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a state is hundreds of thousands of live containers, and
    every collection their allocation triggers would scan them all for nothing (2 to 3 times slower)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def dumps(state: object) -> bytes:
    """The bytes of ``state``, in :data:`FORMAT_VERSION` (see the module docstring).

    Raises :class:`StateFormatError` for an object of a class that is not in
    :data:`REGISTRY` (naming the class), or with attributes its entry does not declare.
    """
    with _collector_paused():
        try:
            body = _encode(state, _PLAIN)
        except OverflowError:  # an integer beyond 64 bits somewhere: write it as a big integer
            body = _encode(state, _SCALARS)
    return MAGIC + bytes([FORMAT_VERSION]) + _checksum(FORMAT_VERSION, body).to_bytes(4, "big") + body


#: From this version on, the CRC covers the version byte too: a blob whose version was altered into an older one
#: the body could pass for (version 5's into 4, whose migration cannot tell) fails its check.
_VERSIONED_CRC = 5


def _checksum(version: int, body: bytes | memoryview) -> int:
    """The header's CRC-32: of the body, and from version 5 on of the version byte then the body."""
    if version >= _VERSIONED_CRC:
        return zlib.crc32(body, zlib.crc32(bytes([version])))
    return zlib.crc32(body)


def _encode(state: object, plain: frozenset[type]) -> bytes:
    encoder = _Encoder(plain)
    root = encoder.encode(state)
    return msgspec.msgpack.encode([encoder.types, root])


# -- reading -----------------------------------------------------------------------------------------

#: Format version -> a function that turns a body of that version into one of the next.
_MIGRATIONS: dict[int, Callable[[object], object]] = {}


def _v1_to_v2(body: object) -> object:
    """Version 2 gave ``core.SLO`` its ``min_bad_events`` (the evidence a burn-rate alert needs): version 1's
    SLOs get the default, 5."""
    if type(body) is not list or len(body) != 2 or type(body[0]) is not list:
        return body  # not a body this can upgrade; the decoder says what is wrong with it
    types = body[0]
    index = next((i for i, t in enumerate(types) if type(t) is list and t[:1] == ["core.SLO"]), None)
    if index is None:
        return body
    types[index] = ["core.SLO", [*types[index][1], "min_bad_events"]]
    pending: list[object] = [body[1]]
    while pending:
        node = pending.pop()
        if type(node) is list:
            if len(node) >= 2 and node[0] == _OBJECT and node[1] == index:
                node.append(5)
            pending.extend(node[1:])
        elif type(node) is dict:
            pending.extend(node.values())
    return body


_MIGRATIONS[1] = _v1_to_v2


# Version 3 writes the joins packed under new names (core.LabelJoin.packed, core.TwinJoin.packed); the
# names version 2 wrote are still read, so a version 2 body is a version 3 body as it is.
def _v2_to_v3(body: object) -> object:
    """A version 2 body is a version 3 body as it is, but cannot hold a packed join (a blob claiming
    version 2 that does is refused: the version byte is outside the CRC)."""
    if type(body) is list and body and type(body[0]) is list:
        for item in body[0]:
            if type(item) is list and item and type(item[0]) is str and item[0].endswith(".packed"):
                raise StateFormatError(f"a version 2 state cannot hold a {item[0]}: altered?")
    return body


_MIGRATIONS[2] = _v2_to_v3


def _fields_added(added: Mapping[str, tuple[str, list[str]]], body: object) -> object:
    """A body with the fields ``added`` (type name -> (the field they follow, their names)) inserted into
    its types' field lists and, as ``None``, into every object of those types."""
    if type(body) is not list or len(body) != 2 or type(body[0]) is not list:
        return body  # not a body this can upgrade; the decoder says what is wrong with it
    inserts: dict[int, tuple[int, int]] = {}  # type index -> (position in the object's list, fields added)
    for index, item in enumerate(body[0]):
        if type(item) is list and len(item) == 2 and item[0] in added and type(item[1]) is list:
            after, names = added[item[0]]
            if after not in item[1] or any(name in item[1] for name in names):
                continue  # not the previous version's fields: the decoder refuses it
            at = item[1].index(after) + 1
            item[1][at:at] = names
            inserts[index] = (2 + at, len(names))  # [tag, type index, *fields]
    if not inserts:
        return body
    pending: list[object] = [body[1]]
    while pending:
        node = pending.pop()
        if type(node) is list:
            if len(node) >= 2 and node[0] == _OBJECT and type(node[1]) is int and node[1] in inserts:
                at, count = inserts[node[1]]
                node[at:at] = [None] * count
            pending.extend(node[1:])
        elif type(node) is dict:
            pending.extend(node.values())
    return body


def _v3_to_v4(body: object) -> object:
    """Version 4 gave windows the predicted values' counts and the counts of estimated performance, and
    performance aggregates the counts that check the estimate: version 3's have none (``None``)."""
    return _fields_added(
        {
            "pipeline.WindowAggregates": ("score", ["prediction", "estimate"]),
            "core.PerformanceAggregates": ("_scored", ["score_edges", "estimate", "estimate_correct"]),
        },
        body,
    )


def _v4_to_v5(body: object) -> object:
    """Version 5 gave windows the reconstruction errors of multivariate drift: version 4's have none."""
    return _fields_added({"pipeline.WindowAggregates": ("estimate", ["multivariate"])}, body)


def _v5_to_v6(body: object) -> object:
    """Version 6 gave windows their multivariate drift per slice and their embeddings' counts: version 5's
    have none (``None``; :meth:`~streamwatch.pipeline.aggregates.WindowAggregates.rebuild` makes empty
    embedding counts of it)."""
    return _fields_added(
        {
            "pipeline.WindowAggregates": (
                "multivariate",
                ["multivariate_slices", "embeddings", "projections", "embedding_wrong_length"],
            )
        },
        body,
    )


_MIGRATIONS[3] = _v3_to_v4
_MIGRATIONS[4] = _v4_to_v5
_MIGRATIONS[5] = _v5_to_v6


class _Decoder:
    """Builds a state from the nested lists of a body, refusing anything the format does not allow."""

    def __init__(self, types: object, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> None:
        self.profiles = profiles
        self.memo: list[object] = []
        self.types: list[StateType] = []
        if type(types) is not list:
            raise StateFormatError("the body does not start with a list of types")
        for item in types:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str or type(item[1]) is not list:
                raise StateFormatError("an entry of the type list is not [name, fields]")
            name, fields = item
            entry = _entry_for_name(name)
            if entry is None:
                raise StateFormatError(f"unknown state type {name!r}: not in this streamwatch's registry")
            if tuple(fields) != entry.fields:
                raise StateFormatError(
                    f"{name} was written with fields {fields}; this streamwatch has {list(entry.fields)} "
                    "(a format change without a migration?)"
                )
            self.types.append(entry)
        self.readers: list[Callable[[list[Any]], object]] = [
            self.read_tuple,
            self.read_list,
            self.read_dict,
            self.read_set,
            self.read_frozenset,
            self.read_ordered_dict,
            self.read_default_dict,
            self.read_deque,
            self.read_big_int,
            self.read_array,
            self.read_numpy_scalar,
            self.read_object,
            self.read_profile,
            self.read_ref,
        ]

    def decode(self, node: object) -> object:
        if type(node) is list:
            items: list[Any] = node
            tag = items[0] if items else None
            if type(tag) is int:
                if tag == _TUPLE:  # the bulk of a checkpoint: read here, without a call per tuple
                    if _PLAIN.issuperset(map(type, items)):
                        return tuple(islice(items, 1, None))
                    decode = self.decode
                    return tuple([v if type(v) in _PLAIN else decode(v) for v in islice(items, 1, None)])
                if 0 < tag < len(self.readers):
                    return self.readers[tag](items)
            raise StateFormatError(f"an array without a known tag ({str(items[:1])[:40]})")
        if type(node) in _PLAIN:
            return node
        raise StateFormatError(f"unexpected {type(node).__name__} in the body")

    def _remember(self, obj: object) -> int:
        self.memo.append(obj)
        return len(self.memo) - 1

    def _items(self, node: list[Any], first: int) -> list[object]:
        """The decoded items of ``node[first:]``, in order (so references match the writer's order)."""
        if _PLAIN.issuperset(map(type, node)):  # the common case, in C
            return node[first:]
        decode = self.decode
        return [v if type(v) in _PLAIN else decode(v) for v in islice(node, first, None)]

    def read_tuple(self, node: list[Any]) -> object:
        return tuple(self._items(node, 1))

    def read_list(self, node: list[Any]) -> object:
        out: list[object] = []
        self._remember(out)  # before the items, as the writer numbered it
        out.extend(self._items(node, 1))
        return out

    def read_set(self, node: list[Any]) -> object:
        out: set[object] = set()
        self._remember(out)
        out.update(self._items(node, 1))
        return out

    def read_frozenset(self, node: list[Any]) -> object:
        return frozenset(self._items(node, 1))

    def read_deque(self, node: list[Any]) -> object:
        if len(node) < 2 or not (node[1] is None or (type(node[1]) is int and node[1] >= 0)):
            raise StateFormatError("a deque without a valid maxlen")
        out: deque[object] = deque(maxlen=node[1])
        self._remember(out)
        out.extend(self._items(node, 2))
        return out

    def _fill(self, out: dict[Any, Any], node: list[Any], first: int) -> dict[Any, Any]:
        if (len(node) - first) % 2:
            raise StateFormatError("a mapping with a key and no value")
        items = iter(self._items(node, first))
        out.update(zip(items, items, strict=False))
        return out

    def read_dict(self, node: list[Any]) -> object:
        out: dict[Any, Any] = {}
        self._remember(out)
        return self._fill(out, node, 1)

    def read_ordered_dict(self, node: list[Any]) -> object:
        out: OrderedDict[Any, Any] = OrderedDict()
        self._remember(out)
        return self._fill(out, node, 1)

    def read_default_dict(self, node: list[Any]) -> object:
        if len(node) < 2 or type(node[1]) is not str or node[1] not in _FACTORIES:
            raise StateFormatError(f"a defaultdict of an unknown factory ({str(node[1:2])[:40]})")
        out: defaultdict[Any, Any] = defaultdict(_FACTORIES[node[1]])
        self._remember(out)
        return self._fill(out, node, 2)

    def read_big_int(self, node: list[Any]) -> object:
        if len(node) != 2 or type(node[1]) is not bytes or not 0 < len(node[1]) <= _MAX_BIG_INT_BYTES:
            raise StateFormatError("a big integer that is not 1 to 4096 bytes")
        return int.from_bytes(node[1], "big", signed=True)

    @staticmethod
    def _dtype(name: object) -> np.dtype[Any]:
        if type(name) is not str or name not in _DTYPES:
            raise StateFormatError(f"numpy dtype {str(name)[:40]!r} is not in the allow-list")
        return np.dtype(name)

    def read_array(self, node: list[Any]) -> object:
        if len(node) != 4 or type(node[2]) is not list or type(node[3]) is not bytes:
            raise StateFormatError("a numpy array that is not [dtype, shape, bytes]")
        dtype, shape, data = self._dtype(node[1]), node[2], node[3]
        if len(shape) > _MAX_DIMENSIONS or not all(type(n) is int and n >= 0 for n in shape):
            raise StateFormatError(f"a numpy array of shape {str(shape)[:60]}")
        if math.prod(shape) * dtype.itemsize != len(data):
            raise StateFormatError(
                f"a numpy array of shape {tuple(shape)} and dtype {dtype.str} needs "
                f"{math.prod(shape) * dtype.itemsize} bytes, not {len(data)} (truncated?)"
            )
        out = np.frombuffer(data, dtype=dtype).reshape(shape).copy()  # a copy: writable, and owns its memory
        self._remember(out)
        return out

    def read_numpy_scalar(self, node: list[Any]) -> object:
        if len(node) != 3 or type(node[2]) is not bytes:
            raise StateFormatError("a numpy scalar that is not [dtype, bytes]")
        dtype = self._dtype(node[1])
        if len(node[2]) != dtype.itemsize:
            raise StateFormatError(f"a numpy {dtype.str} scalar of {len(node[2])} bytes")
        return np.frombuffer(node[2], dtype=dtype)[0]

    def read_object(self, node: list[Any]) -> object:
        if len(node) < 2 or type(node[1]) is not int or not 0 <= node[1] < len(self.types):
            raise StateFormatError("an object of a type missing from the type list")
        entry = self.types[node[1]]
        values = node[2:]
        if len(values) != len(entry.fields):
            raise StateFormatError(f"a {entry.name} with {len(values)} fields instead of {len(entry.fields)}")
        decode = self.decode
        if entry.build is not None:
            index = self._remember(_PENDING)
            try:
                built = entry.build([decode(v) for v in values])
            except StreamwatchError:
                raise
            except (ValueError, TypeError, ValidationError) as exc:
                raise StateFormatError(f"a {entry.name} that does not load: {exc}") from None
            self.memo[index] = built
            return built
        obj: object = object.__new__(entry.cls)  # no __init__: the fields come from the blob
        self._remember(obj)
        decoded = [v if type(v) in _PLAIN else decode(v) for v in values]
        if entry.has_dict:
            obj.__dict__.update(zip(entry.fields, decoded, strict=True))
        else:
            for field, value in zip(entry.fields, decoded, strict=True):
                object.__setattr__(obj, field, value)  # also through a frozen dataclass's guard
        if entry.rebuild is not None:
            entry.rebuild(obj)
        return obj

    def read_profile(self, node: list[Any]) -> object:
        if len(node) != 4 or not all(type(v) is str for v in node[1:]):
            raise StateFormatError("a reference profile that is not [model, version, sha256]")
        _, model, version, sha = node
        profile = self.profiles.get((model, version))
        if profile is None or profile.lineage.content_sha256 != sha:
            raise ProfileNotLoadedError(
                f"checkpoint refers to reference profile {model} {version} ({sha[:12]}), which is not loaded"
            )
        self._remember(profile)
        return profile

    def read_ref(self, node: list[Any]) -> object:
        if len(node) != 2 or type(node[1]) is not int or not 0 <= node[1] < len(self.memo):
            raise StateFormatError("a reference to nothing written before it")
        target = self.memo[node[1]]
        if target is _PENDING:
            raise StateFormatError("a reference into an object still being read (a cycle)")
        return target


def _body(data: bytes) -> object:
    """The decoded MessagePack of a blob, upgraded to :data:`FORMAT_VERSION`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateFormatError(f"a state is bytes, not {type(data).__name__}")
    view = memoryview(data)
    if len(view) < 4 or bytes(view[:3]) != MAGIC:
        head = bytes(view[:4])
        legacy = head[:1] == b"\x80"  # how Python's object serialization starts: what streamwatch wrote before
        hint = " (Python object serialization, as streamwatch wrote before this format: never loaded)" if legacy else ""
        raise StateFormatError(f"not a streamwatch state: it starts with {head!r}, not {MAGIC!r}{hint}")
    version = view[3]
    if version > FORMAT_VERSION:
        raise StateFormatError(
            f"state written in format version {version}, by a newer streamwatch; "
            f"this one reads versions up to {FORMAT_VERSION}"
        )
    if version != FORMAT_VERSION and version not in _MIGRATIONS:
        raise StateFormatError(f"state written in format version {version}, which this streamwatch cannot read")
    if len(view) < _HEADER:
        raise StateFormatError(f"state of {len(view)} bytes: shorter than its header (truncated)")
    checksum = int.from_bytes(view[4:_HEADER], "big")
    if _checksum(version, view[_HEADER:]) != checksum:
        raise StateFormatError(f"state of {len(view)} bytes fails its CRC-32 check: truncated or altered")
    try:
        body: object = msgspec.msgpack.decode(view[_HEADER:])
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: a string that is not UTF-8
        raise StateFormatError(f"state bytes are not valid MessagePack: {exc}") from None
    while version < FORMAT_VERSION:
        body, version = _MIGRATIONS[version](body), version + 1
    return body


def loads(data: bytes, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> Any:
    """The state in ``data``, its reference profiles resolved against ``profiles``.

    Raises :class:`StateFormatError` when ``data`` is not a state this code can
    read (saying why), and :class:`ProfileNotLoadedError` when it refers to a
    reference profile that ``profiles`` lacks. Returns Any: a state is whatever
    its writer made it (a stage's dict, a merger, an aggregate).
    """
    with _collector_paused():
        try:
            return _decode(data, profiles)
        except StreamwatchError:
            raise
        except Exception as exc:  # whatever else bad data makes the standard library or numpy raise
            raise StateFormatError(f"state does not load: {type(exc).__name__}: {exc}") from None


def _decode(data: bytes, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> object:
    # Apart from loads so that the decoded MessagePack is freed before the collector runs again.
    body = _body(data)
    if type(body) is not list or len(body) != 2:
        raise StateFormatError("the body is not [types, state]")
    return _Decoder(body[0], profiles).decode(body[1])
