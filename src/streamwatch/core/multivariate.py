"""Multivariate drift: how far a window's rows lie from the reference's principal plane.

Univariate statistics watch one feature at a time, so they miss a change in how
features go together: two features that moved together in the training data and
move independently in production keep both their distributions. This module
watches the joint structure with NannyML's *data reconstruction drift*, made
streaming and mergeable:

1. **Fit, once, on the reference** (:func:`fit_reconstruction`). Numeric columns
   are imputed with the reference mean and standardised; categorical columns are
   one-hot encoded on their most frequent categories and standardised too. A PCA
   keeps the fewest components that explain ``variance_share`` (65%, NannyML's
   default) of the variance. The result, :class:`ReconstructionModel`, is plain
   data that a profile stores as JSON. Each reference row's error comes with it,
   held out from the fit by default (see the function), for the thresholds.
2. **Per row** (:meth:`ReconstructionModel.errors`): project the standardised row
   onto the components and back; its *reconstruction error* is the Euclidean
   distance between the row and its reconstruction. A row that keeps the
   reference's correlations lies near the principal plane and has a small error;
   a row that breaks them does not.
3. **Per window** (:class:`ReconstructionCounts`): NannyML reports the mean error
   per chunk. Here a window keeps integer state that merges exactly: the row
   count, the errors' sum in fixed point (units of 1e-9) and a histogram of the
   errors on the reference's quantile edges. So the partials of any split of a
   stream (partitions, workers, micro-batches) merge to exactly what the whole
   stream gives, and the mean error comes from the merged sums.
4. **When the mean means drift** (:func:`reconstruction_threshold`). NannyML
   alerts outside the reference chunks' mean ± 3 standard deviations, which
   needs many reference chunks of the window's size and fixes the false-alert
   rate at whatever 3 standard deviations gives. streamwatch resamples windows
   of the reference instead, as :func:`~streamwatch.core.thresholds.calibrate`
   does, and puts the threshold at the ``1 - alpha`` quantile of their mean
   error, ``alpha`` being the false-alert budget's per-window rate
   (:mod:`streamwatch.core.budget`). Only a rise alerts: see the function.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=5000)
>>> together = np.column_stack([x, x + 0.3 * rng.normal(size=5000)])
>>> model, reference_errors = fit_reconstruction(together)
>>> model.components.shape  # one component keeps the shared direction
(1, 2)
>>> reference = ReconstructionCounts(bin_edges(reference_errors))
>>> reference.update(reference_errors, imputed=0)
>>> threshold = reconstruction_threshold(reference, window_size=200, alpha=0.001)
>>> apart = np.column_stack([rng.normal(size=200), rng.normal(size=200) * together[:, 1].std()])
>>> window = ReconstructionCounts(reference.histogram.edges)
>>> window.update(*model.errors(apart))
>>> bool(window.mean > threshold > reference.mean)
True

Imports numpy, scipy (through :mod:`~streamwatch.core.thresholds`), the standard
library and :mod:`streamwatch.core` only. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from streamwatch.core.binning import bin_edges
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.thresholds import CALIBRATION_DRAWS, tail_quantile

__all__ = [
    "COUNTS_FIELDS",
    "DEFAULT_HELD_OUT_FOLDS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_VARIANCE_SHARE",
    "MAX_ERROR",
    "SLICE_COUNTS_FIELDS",
    "ReconstructionCounts",
    "ReconstructionModel",
    "SliceReconstructionCounts",
    "fit_reconstruction",
    "reconstruction_threshold",
]

#: Share of the reference's (standardised) variance the kept components explain: NannyML's default.
DEFAULT_VARIANCE_SHARE = 0.65
#: Folds of the reference whose rows get their errors from a fit on the other folds (see :func:`fit_reconstruction`).
DEFAULT_HELD_OUT_FOLDS = 5
#: Categories of a categorical column that get an indicator column of their own (the most frequent ones).
DEFAULT_MAX_CATEGORIES = 10
#: A row's error is capped here (in reference standard deviations). Only garbage gets near it (a value
#: around 1e9 standard deviations off); the cap keeps the fixed-point sum of a row within 64 bits, and
#: such a window's mean is far past any threshold either way.
MAX_ERROR = 1e9
#: The fixed-point unit of the errors' sum: 1e-9 (``_UNITS_PER_ERROR`` units per unit of error).
_UNITS_PER_ERROR = 10**9
#: The attributes :class:`ReconstructionCounts` sets: what a checkpoint writes, field by field.
COUNTS_FIELDS: tuple[str, ...] = ("histogram", "n", "_error_units", "imputed")
#: The attributes :class:`SliceReconstructionCounts` sets.
SLICE_COUNTS_FIELDS: tuple[str, ...] = ("edges", "slices", "max_slices_per_key", "_slices", "_overflow")
#: Resampling groups (see :func:`reconstruction_threshold`): this many of equal reference mass, and this
#: many of equal width in error, so both the body and the long right tail are resolved.
_MASS_GROUPS = 24
_WIDTH_GROUPS = 24

_STR_OR_NONE = frozenset({str, type(None)})


class ReconstructionModel:
    """A fitted reconstruction: how to encode a row, and the principal components it is projected on.

    Plain data, so a profile can store it as JSON (:meth:`to_dict`, :meth:`from_dict`):

    - ``numeric``: how many numeric columns come first;
    - ``categories``: per categorical column, the categories that have an indicator column;
    - ``means`` and ``scales``: per encoded column (the numeric ones, then each categorical column's
      indicators in the order of ``categories``), what standardising subtracts and divides by;
    - ``components``: the kept principal components, ``(k, d)``, orthonormal rows in the encoded space.

    Build one with :func:`fit_reconstruction`.

    >>> model = ReconstructionModel([0.0, 0.5], [1.0, 0.5], [[0.6, 0.8]], [["a"]], numeric=1)
    >>> encoded, imputed = model.encode(np.array([[2.0], [np.nan]]), [np.array(["a", None], dtype=object)])
    >>> encoded.tolist(), imputed.tolist()
    ([[2.0, 1.0], [0.0, -1.0]], [0, 1])
    >>> errors, count = model.errors(np.array([[2.0], [np.nan]]), [np.array(["a", None], dtype=object)])
    >>> [round(float(e), 6) for e in errors], count
    ([1.0, 0.6], 1)
    """

    def __init__(
        self,
        means: Sequence[float] | np.ndarray,
        scales: Sequence[float] | np.ndarray,
        components: Sequence[Sequence[float]] | np.ndarray,
        categories: Sequence[Sequence[str]],
        numeric: int,
    ) -> None:
        self.means = np.array(means, dtype=np.float64)
        self.scales = np.array(scales, dtype=np.float64)
        self.components = np.array(components, dtype=np.float64)
        self.categories = [[str(c) for c in column] for column in categories]
        self.numeric = int(numeric)
        width = self.numeric + sum(len(column) for column in self.categories)
        if self.numeric < 0 or width < 1:
            raise ValueError("a reconstruction needs at least one encoded column")
        if any(len(set(column)) != len(column) for column in self.categories):
            raise ValueError("the categories of a categorical column must be distinct")
        if self.means.shape != (width,) or self.scales.shape != (width,):
            raise ValueError(
                f"need one mean and one scale per encoded column ({width}), "
                f"got {self.means.shape} and {self.scales.shape}"
            )
        if not (np.all(np.isfinite(self.means)) and np.all(np.isfinite(self.scales)) and np.all(self.scales > 0)):
            raise ValueError("means must be finite and scales finite and positive")
        if self.components.ndim != 2 or self.components.shape[0] < 1 or self.components.shape[1] != width:
            raise ValueError(f"components must have shape (k >= 1, {width}), got {self.components.shape}")
        if not np.all(np.isfinite(self.components)):
            raise ValueError("components must be finite")

    @property
    def width(self) -> int:
        """Encoded columns: the numeric ones plus one indicator per kept category."""
        return int(self.means.size)

    def encode(
        self, numeric: np.ndarray, categorical: Sequence[np.ndarray | Sequence[object]] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows as the PCA sees them, ``(n, width)``, and how many numeric values each row had imputed.

        A missing numeric value (NaN, or an infinite one, which no mean or distance survives) is
        imputed with the reference mean: 0 once standardised. A categorical value outside the kept
        categories, unseen or missing (``None`` or NaN), sets none of the column's indicators; it is
        not imputed. Categorical values are compared as strings.
        """
        values, columns = self._checked(numeric, categorical)
        return _encode(values, columns, self.means, self.scales, self.categories)

    def errors(
        self, numeric: np.ndarray, categorical: Sequence[np.ndarray | Sequence[object]] = ()
    ) -> tuple[np.ndarray, int]:
        """Each row's reconstruction error (``(n,)``, Euclidean, in the standardised space) and how many
        numeric values were imputed in the batch."""
        encoded, imputed = self.encode(numeric, categorical)
        return _reconstruction_errors(encoded, self.components), int(imputed.sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (a profile's JSON); :meth:`from_dict` rebuilds the same model exactly.

        >>> model = ReconstructionModel([0.1, 0.2], [1.0, 3.0], [[0.6, 0.8]], [], numeric=2)
        >>> ReconstructionModel.from_dict(model.to_dict()) == model
        True
        """
        return {
            "numeric": self.numeric,
            "categories": [list(column) for column in self.categories],
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "components": self.components.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconstructionModel:
        """The model :meth:`to_dict` wrote; a ``ValueError`` says what is wrong with a bad one."""
        missing = sorted({"numeric", "categories", "means", "scales", "components"} - data.keys())
        if missing:
            raise ValueError(f"a reconstruction model needs {missing}")
        return cls(data["means"], data["scales"], data["components"], data["categories"], data["numeric"])

    def _checked(
        self, numeric: np.ndarray, categorical: Sequence[np.ndarray | Sequence[object]]
    ) -> tuple[np.ndarray, list[list[str | None]]]:
        values = np.asarray(numeric, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.numeric:
            raise ValueError(f"numeric must be a 2-D array of shape (rows, {self.numeric}), got shape {values.shape}")
        if len(categorical) != len(self.categories):
            raise ValueError(f"expected {len(self.categories)} categorical columns, got {len(categorical)}")
        return values, [_strings(column, values.shape[0], i) for i, column in enumerate(categorical)]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ReconstructionModel)
            and (self.numeric, self.categories) == (other.numeric, other.categories)
            and np.array_equal(self.means, other.means)
            and np.array_equal(self.scales, other.scales)
            and np.array_equal(self.components, other.components)
        )

    def __repr__(self) -> str:
        return (
            f"ReconstructionModel(numeric={self.numeric}, categorical={len(self.categories)}, "
            f"width={self.width}, components={self.components.shape[0]})"
        )


def fit_reconstruction(
    numeric: np.ndarray,
    categorical: Sequence[np.ndarray | Sequence[object]] = (),
    variance_share: float = DEFAULT_VARIANCE_SHARE,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    *,
    held_out_folds: int = DEFAULT_HELD_OUT_FOLDS,
) -> tuple[ReconstructionModel, np.ndarray]:
    """Fit the reconstruction on the reference: the model, and each reference row's error (held out).

    ``numeric`` is ``(n, p)`` floats (NaN for missing), ``categorical`` one column of ``n`` values per
    categorical feature (``None`` or NaN for missing; compared as strings).

    **Numeric columns** are imputed with their mean over the present values, then standardised with the
    mean and standard deviation of the imputed column (a constant column's scale is 1), as NannyML's
    ``SimpleImputer`` and ``StandardScaler`` do.

    **Categorical columns** get one indicator column per category among their ``max_categories`` most
    frequent ones (ties broken by name), standardised like numeric columns; other values and missing
    ones set no indicator. NannyML encodes a category by its frequency instead (one number per column).
    Indicators are streamwatch's choice because a frequency code is blind to the changes this method is
    for: two categories of equal frequency get the same code, so a row's category can switch to another
    as frequent without its encoding moving, and the code's order (by frequency) has no linear relation
    with the other features for the PCA to learn. With indicators, PCA learns which categories go with
    which values of the other features. The cap bounds the encoded width, so the cost per row and the
    profile's size stay small, and leaves out rare categories whose indicators would be mostly noise.

    **PCA** is numpy's SVD of the standardised reference. It keeps the fewest components whose explained
    variance share reaches ``variance_share``, at least one and at most ``width - 1`` (so that something
    is left to reconstruct). Each component's sign makes its largest entry (in absolute value) positive,
    so the same reference always gives the same model.

    **The reference errors** are what thresholds are calibrated on, so they should be what new rows from
    the reference's distribution get. In-sample errors (NannyML's: the rows the PCA was fitted on) run low,
    since the fit bends the components towards those very rows, by a relative O(width / n). So each row's
    error is taken *held out* by default: rows are dealt into ``held_out_folds`` folds (row ``i`` into
    fold ``i % folds``, no randomness), and a fold's rows get their error under the same number of
    components fitted on the other folds (same standardisation). Those run high instead (each fold fit
    has fewer rows), which errs on the side of fewer false alerts. Measured on 2,000 reference rows of 8
    correlated numeric columns and one 8-category column (16 encoded columns), stationary windows of 500
    rows crossed the ``alpha = 0.01`` threshold in 24 of 1,000 windows with in-sample errors and in none
    with held-out ones; with 20,000 reference rows, in 11 and 5. ``held_out_folds=0`` gives the
    in-sample errors (``model.errors`` of the reference).

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(500, 1))
    >>> model, errors = fit_reconstruction(np.hstack([x, -x, rng.normal(size=(500, 1))]))
    >>> model.components.shape, errors.shape  # the shared direction explains 2/3 of the variance
    ((1, 3), (500,))
    >>> fit_reconstruction(np.zeros((1, 2)))
    Traceback (most recent call last):
    ...
    ValueError: fitting a reconstruction needs at least 2 reference rows, got 1
    """
    values = np.asarray(numeric, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"numeric must be a 2-D array of shape (rows, columns), got shape {values.shape}")
    rows = values.shape[0]
    if rows < 2:
        raise ValueError(f"fitting a reconstruction needs at least 2 reference rows, got {rows}")
    if not 0 < variance_share <= 1:
        raise ValueError(f"variance_share must lie in (0, 1], got {variance_share}")
    if max_categories < 1:
        raise ValueError(f"max_categories must be at least 1, got {max_categories}")
    columns = [_strings(column, rows, i) for i, column in enumerate(categorical)]

    present = np.isfinite(values)
    counts = present.sum(axis=0)
    means = np.where(present, values, 0.0).sum(axis=0) / np.maximum(counts, 1)
    scales = np.where(present, values, means).std(axis=0)

    categories: list[list[str]] = []
    shares: list[float] = []
    for column in columns:
        frequencies = Counter(value for value in column if value is not None)
        kept = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))[:max_categories]
        categories.append([name for name, _ in kept])
        shares.extend(count / rows for _, count in kept)
    share = np.array(shares, dtype=np.float64)
    means = np.concatenate([means, share])
    scales = np.concatenate([scales, np.sqrt(share * (1 - share))])
    scales[~(scales > 0)] = 1.0
    if means.size == 0:
        raise ValueError("a reconstruction needs at least one numeric column or one categorical value")

    if held_out_folds < 0 or held_out_folds == 1:
        raise ValueError(f"held_out_folds must be 0 (in-sample errors) or at least 2, got {held_out_folds}")

    encoded, _ = _encode(values, columns, means, scales, categories)
    components = _principal_components(encoded, variance_share)
    model = ReconstructionModel(means, scales, components, categories, numeric=values.shape[1])
    if not held_out_folds:
        return model, _reconstruction_errors(encoded, components)
    return model, _held_out_errors(encoded, components.shape[0], min(held_out_folds, rows))


def _held_out_errors(encoded: np.ndarray, kept: int, folds: int) -> np.ndarray:
    """Each row's error under ``kept`` components fitted without its fold (row ``i`` is in fold ``i % folds``).

    A fold fit's components are the top eigenvectors of the other folds' scatter matrix (the whole one less
    the fold's): one pass over the rows and a ``width x width`` eigenproblem per fold, where an SVD per fold
    would take ``folds`` passes.
    """
    errors = np.empty(encoded.shape[0], dtype=np.float64)
    fold = np.arange(encoded.shape[0]) % folds
    scatters = [encoded[fold == held].T @ encoded[fold == held] for held in range(folds)]
    total = np.sum(scatters, axis=0)
    for held in range(folds):
        _, vectors = np.linalg.eigh(total - scatters[held])  # eigenvalues ascending: the top ones last
        out = fold == held
        errors[out] = _reconstruction_errors(encoded[out], vectors[:, ::-1][:, :kept].T)
    return errors


def _principal_components(encoded: np.ndarray, variance_share: float) -> np.ndarray:
    """The fewest principal components explaining ``variance_share`` of the variance (1 to width - 1)."""
    _, singular, vt = np.linalg.svd(encoded, full_matrices=False)
    variance = singular**2
    total = float(variance.sum())
    width = encoded.shape[1]
    wanted = int(np.searchsorted(np.cumsum(variance) / total, variance_share, side="left")) + 1 if total > 0 else 1
    kept = max(1, min(wanted, width - 1 if width > 1 else 1, vt.shape[0]))
    components = vt[:kept].copy()
    largest = components[np.arange(kept), np.argmax(np.abs(components), axis=1)]
    components[largest < 0] *= -1
    return components


def _encode(
    values: np.ndarray,
    columns: Sequence[list[str | None]],
    means: np.ndarray,
    scales: np.ndarray,
    categories: Sequence[Sequence[str]],
) -> tuple[np.ndarray, np.ndarray]:
    rows, numeric = values.shape
    encoded = np.empty((rows, means.size), dtype=np.float64)
    missing = ~np.isfinite(values)
    encoded[:, :numeric] = values
    start = numeric
    for column, kept in zip(columns, categories, strict=True):
        lookup: dict[str | None, int] = {name: i for i, name in enumerate(kept)}
        # dict.get over the column runs in C; a value without an indicator maps past the last one.
        codes = np.fromiter(map(lookup.get, column, repeat(len(kept))), dtype=np.intp, count=rows)
        encoded[:, start : start + len(kept)] = codes[:, None] == np.arange(len(kept))
        start += len(kept)
    encoded -= means
    encoded /= scales
    if missing.any():
        encoded[:, :numeric][missing] = 0.0
    imputed: np.ndarray = missing.sum(axis=1)
    return encoded, imputed


def _reconstruction_errors(encoded: np.ndarray, components: np.ndarray) -> np.ndarray:
    residual = encoded - (encoded @ components.T) @ components
    errors: np.ndarray = np.sqrt(np.einsum("ij,ij->i", residual, residual))
    return errors


def _strings(column: np.ndarray | Sequence[object], rows: int, index: int) -> list[str | None]:
    """A categorical column as strings, ``None`` for missing (``None`` or a float NaN)."""
    if isinstance(column, np.ndarray):
        if column.ndim != 1:
            raise ValueError(f"categorical column {index} must be 1-D, got shape {column.shape}")
        values: list[Any] = column.tolist()
    else:
        values = list(column)
    if len(values) != rows:
        raise ValueError(f"categorical column {index} has {len(values)} rows, numeric has {rows}")
    if not _STR_OR_NONE.issuperset(map(type, values)):
        values = [
            value
            if value is None or type(value) is str
            else None
            if isinstance(value, float) and math.isnan(value)
            else str(value)
            for value in values
        ]
    return values


class ReconstructionCounts:
    """A window's reconstruction errors, mergeable exactly: count, fixed-point sum, histogram, imputed values.

    ``edges`` are the reference errors' :func:`~streamwatch.core.bin_edges`, so the histogram lines up with
    the reference's. The sum is kept in integer units of 1e-9 (each row's error rounded to the nearest
    unit, capped at :data:`MAX_ERROR`), so merging the partials of any split of a stream gives exactly
    what the whole stream gives; :attr:`mean` is computed from the merged integers.

    >>> edges = bin_edges([0.1, 0.2, 0.3, 0.4, 0.5])
    >>> a, b = ReconstructionCounts(edges), ReconstructionCounts(edges)
    >>> a.update(np.array([0.1, 0.25]), imputed=1)
    >>> b.update(np.array([0.6]), imputed=0)
    >>> a.merge(b)
    >>> a.n, round(a.mean, 9), a.imputed, a.histogram.counts.tolist()
    (3, 0.316666667, 1, [0, 1, 1, 0, 0, 1])
    >>> ReconstructionCounts(edges).mean
    nan
    """

    def __init__(self, edges: np.ndarray | Sequence[float]) -> None:
        self.histogram = NumericHistogram(edges)
        self.n = 0
        self._error_units = 0
        self.imputed = 0

    def update(self, errors: np.ndarray, imputed: int = 0) -> None:
        """Count a batch of rows' errors (from :meth:`ReconstructionModel.errors`) and its imputed values."""
        values = np.asarray(errors, dtype=np.float64).ravel()
        if imputed < 0:
            raise ValueError(f"imputed must be non-negative, got {imputed}")
        if values.size:
            if np.any(values < 0):
                raise ValueError("reconstruction errors are distances: none can be negative")
            values = np.minimum(np.nan_to_num(values, nan=MAX_ERROR, posinf=MAX_ERROR), MAX_ERROR)
            units = np.rint(values * _UNITS_PER_ERROR).astype(np.int64)  # at most 1e18: within 64 bits
            # A batch's int64 sum is exact while it cannot overflow; past that, Python's integers sum it.
            safe = float(values.max()) * _UNITS_PER_ERROR * values.size < 2.0**62
            self._error_units += int(units.sum()) if safe else sum(units.tolist())
            self.histogram.update(values)
            self.n += int(values.size)
        self.imputed += int(imputed)

    def merge(self, other: ReconstructionCounts) -> None:
        """Add ``other``'s rows (same edges) to this window's."""
        self.histogram.merge(other.histogram)  # (refuses other edges before anything changes)
        self.n += other.n
        self._error_units += other._error_units
        self.imputed += other.imputed

    def copy(self) -> ReconstructionCounts:
        new = ReconstructionCounts(self.histogram.edges)
        new.merge(self)
        return new

    @property
    def mean(self) -> float:
        """The mean reconstruction error (NaN for no rows), correctly rounded from the integer sum."""
        if not self.n:
            return float("nan")
        return self._error_units / (self.n * _UNITS_PER_ERROR)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ReconstructionCounts)
            and self.histogram == other.histogram
            and (self.n, self._error_units, self.imputed) == (other.n, other._error_units, other.imputed)
        )

    def __repr__(self) -> str:
        return f"ReconstructionCounts(n={self.n}, mean={self.mean:.6g}, imputed={self.imputed})"


class SliceReconstructionCounts:
    """:class:`ReconstructionCounts` per slice: for each combination of segment names, per combination of
    their values. A row missing a segment of a combination is in none of its slices.

    As the confusion and estimate counts do, each combination keeps the ``max_slices_per_key`` slices whose
    values sort first, the rest's rows counted in ``overflow``: the kept slices are then the same whatever
    the split of the stream, so merging stays exact.

    >>> edges = bin_edges([0.1, 0.2, 0.3, 0.4, 0.5])
    >>> a, b = SliceReconstructionCounts(edges, [("g",)]), SliceReconstructionCounts(edges, [("g",)])
    >>> a.update(np.array([0.1, 0.3, 0.2]), {"g": np.array(["F", "M", None], dtype=object)})
    >>> b.update(np.array([0.5]), {"g": np.array(["F"], dtype=object)})
    >>> a.merge(b)
    >>> [(segment, counts.n, round(counts.mean, 3)) for segment, counts in a.by_slice().items()]
    [((('g', 'F'),), 2, 0.3), ((('g', 'M'),), 1, 0.3)]
    """

    def __init__(
        self, edges: np.ndarray | Sequence[float], slices: Sequence[Sequence[str]], *, max_slices_per_key: int = 100
    ) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.slices = tuple(tuple(names) for names in slices)
        self.max_slices_per_key = max_slices_per_key
        self._slices: dict[tuple[str, ...], dict[tuple[str, ...], ReconstructionCounts]] = {
            names: {} for names in self.slices
        }
        self._overflow: dict[tuple[str, ...], int] = dict.fromkeys(self.slices, 0)

    def update(self, errors: np.ndarray, segments: Mapping[str, np.ndarray]) -> None:
        """Count rows' ``errors`` in their slices; ``segments`` maps a segment name to its values, lined up
        with the rows (``None`` for a row without it)."""
        values = np.asarray(errors, dtype=np.float64).ravel()
        for names in self.slices:
            if not all(name in segments for name in names):
                continue
            columns = [np.asarray(segments[name], dtype=object) for name in names]
            rows: dict[tuple[str, ...], list[int]] = {}
            for index, key in enumerate(zip(*columns, strict=True)):
                if None not in key:
                    rows.setdefault(tuple(map(str, key)), []).append(index)
            tracked = self._slices[names]
            for key, indices in rows.items():
                counts = tracked.get(key)
                if counts is None:
                    counts = tracked[key] = ReconstructionCounts(self.edges)
                counts.update(values[indices])
            self._cap(names)

    def _cap(self, names: tuple[str, ...]) -> None:
        tracked = self._slices[names]
        if len(tracked) > self.max_slices_per_key:
            for key in sorted(tracked)[self.max_slices_per_key :]:
                self._overflow[names] += tracked.pop(key).n

    def merge(self, other: SliceReconstructionCounts) -> None:
        """Add ``other``'s rows (same edges and slices) to these."""
        for names in self.slices:
            tracked = self._slices[names]
            for key, counts in other._slices.get(names, {}).items():
                mine = tracked.get(key)
                if mine is None:
                    tracked[key] = counts.copy()
                else:
                    mine.merge(counts)
            self._overflow[names] += other._overflow.get(names, 0)
            self._cap(names)

    def by_slice(self) -> dict[tuple[tuple[str, str], ...], ReconstructionCounts]:
        """Counts per slice kept, keyed by the slice's (name, value) pairs, in sort order."""
        return {
            tuple(zip(names, key, strict=True)): self._slices[names][key]
            for names in self.slices
            for key in sorted(self._slices[names])
        }

    @property
    def overflow(self) -> int:
        return sum(self._overflow.values())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SliceReconstructionCounts)
            and np.array_equal(self.edges, other.edges)
            and self.slices == other.slices
            and self._slices == other._slices
            and self._overflow == other._overflow
        )

    def __repr__(self) -> str:
        return f"SliceReconstructionCounts(slices={len(self.by_slice())}, overflow={self.overflow})"


def reconstruction_threshold(
    reference: ReconstructionCounts | NumericHistogram | np.ndarray,
    window_size: int,
    alpha: float,
    *,
    draws: int = CALIBRATION_DRAWS,
    seed: int = 0,
) -> float:
    """The mean error that a window of ``window_size`` rows like the reference exceeds with probability ``alpha``.

    ``reference`` is the reference rows' errors: their :class:`ReconstructionCounts` (what a profile keeps),
    their histogram alone, or the errors themselves (a sample, most exact).

    **The null.** As :func:`~streamwatch.core.thresholds.calibrate` does, windows are resampled from the
    reference's binned errors (multinomial, fixed ``seed``: the same reference always gives the same
    threshold) at the two-sample effective size ``n * N / (n + N)`` (``N`` the reference's rows): the
    reference mean is itself a sample's, so a stationary window's mean strays from it by both samples'
    noise. Each draw's mean is shifted so that the draws centre on the reference's exact mean (the sum's,
    or the sample's), not on the bins' approximation of it.

    **Cost.** Fine bins are grouped first, into about 24 groups of equal reference mass and 24 of equal
    width (the long right tail keeps groups of its own), so the draws cost ``draws x 48`` binomials: a few
    tens of milliseconds for any window size. A draw adds the within-group spread it loses back as normal
    noise of the right variance (exact for a sample, the bins' midpoints standing in for a histogram).

    **The tail.** The threshold is the ``1 - alpha`` quantile of the draws' means, extrapolated by
    :func:`~streamwatch.core.thresholds.tail_quantile` when ``alpha * draws < 10`` (the larger of a gamma
    fit and a log-normal line: the mean of positive, right-skewed errors is itself right-skewed).

    Only a rise in the mean error alerts: rows that break the reference's correlations lie far from its
    plane. A fall (NannyML's lower threshold) mostly means rows were imputed to the reference mean, which
    :attr:`ReconstructionCounts.imputed` and the data-quality rules report.

    >>> errors = np.random.default_rng(2).chisquare(3, 10_000) ** 0.5
    >>> small, large = reconstruction_threshold(errors, 64, 0.01), reconstruction_threshold(errors, 4096, 0.01)
    >>> bool(small > large > errors.mean()), reconstruction_threshold(errors, 64, 1e-4) > small
    (True, True)
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    counts, values, within, mean = _binned_reference(reference)
    total = int(counts.sum())
    effective = max(1, round(window_size * total / (window_size + total)))
    probabilities, group_values, group_within = _grouped(counts, values, within)
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(effective, probabilities, size=draws)
    noise = np.sqrt(samples @ group_within) * rng.standard_normal(draws)
    means = (samples @ group_values + noise) / effective + (mean - float(probabilities @ group_values))
    return tail_quantile(means, alpha, squared=False)


def _binned_reference(
    reference: ReconstructionCounts | NumericHistogram | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Counts per fine bin, each bin's value and within-bin variance, and the reference's mean error."""
    if isinstance(reference, ReconstructionCounts | NumericHistogram):
        histogram = reference.histogram if isinstance(reference, ReconstructionCounts) else reference
        counts = histogram.counts
        if counts.sum() == 0:
            raise ValueError("a reconstruction threshold needs a reference with at least one row")
        edges = histogram.edges
        low = histogram.min if np.isfinite(histogram.min) else edges[0]
        high = histogram.max if np.isfinite(histogram.max) else edges[-1]
        bounds = np.concatenate([[min(low, edges[0])], edges, [max(high, edges[-1])]])
        values = (bounds[:-1] + bounds[1:]) / 2
        values[-1] = bounds[-1] if high <= edges[-1] else values[-1]  # the reference's own top bin: its max
        values[0] = bounds[0] if low >= edges[0] else values[0]
        within = np.zeros(values.size)
        mean = reference.mean if isinstance(reference, ReconstructionCounts) else float(counts @ values / counts.sum())
        return counts, values, within, mean
    sample = np.asarray(reference, dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ValueError("a reconstruction threshold needs a reference with at least one row")
    edges = bin_edges(sample)
    index = np.searchsorted(edges, sample, side="right")
    size = edges.size + 1
    counts = np.bincount(index, minlength=size)
    filled = np.maximum(counts, 1)
    values = np.bincount(index, weights=sample, minlength=size) / filled
    within = np.maximum(np.bincount(index, weights=sample * sample, minlength=size) / filled - values**2, 0.0)
    return counts, values, within, float(sample.mean())


def _grouped(counts: np.ndarray, values: np.ndarray, within: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine bins grouped by reference mass and by value: each group's probability, mean and variance."""
    used = counts > 0
    counts, values, within = counts[used].astype(np.float64), values[used], within[used]
    mass = np.cumsum(counts) / counts.sum()
    by_mass = np.minimum(np.floor((mass - counts / counts.sum() / 2) * _MASS_GROUPS), _MASS_GROUPS - 1)
    span = values[-1] - values[0]
    by_width = np.floor((values - values[0]) / span * _WIDTH_GROUPS) if span > 0 else np.zeros(values.size)
    starts = np.flatnonzero(np.r_[True, (np.diff(by_mass) != 0) | (np.diff(by_width) != 0)])
    weight = np.add.reduceat(counts, starts)
    group_values = np.add.reduceat(counts * values, starts) / weight
    spread = np.add.reduceat(counts * (within + values**2), starts) / weight - group_values**2
    return weight / weight.sum(), group_values, np.maximum(spread, 0.0)
