"""Embedding drift: how far a window's mean embedding lies from the reference's, streaming and mergeable.

A prediction event may carry embeddings (``{name: [float, ...]}``, a 384-dim text
embedding, say). Watching each of hundreds of dimensions as a feature would
drown the false-alert budget, so an embedding is watched as a whole, with the
two measures Arize reports on the mean embedding, made exactly mergeable and
calibrated:

1. **Fit, once, on the reference** (:func:`fit_embedding`): its mean vector and
   the eigendecomposition of its covariance. :class:`EmbeddingReference` keeps
   the mean, the full spectrum, the mean's coordinates in the eigenbasis (what
   the thresholds need) and the top :data:`DEFAULT_COMPONENTS` principal
   components, whose projections (:meth:`EmbeddingReference.project`) other
   tests can watch as ordinary numeric features. Plain data: a profile stores it
   as JSON.
2. **Per window** (:class:`EmbeddingCounts`): the row count and each dimension's
   sum in fixed point (integer units of 1e-9), so the partials of any split of a
   stream (partitions, workers, micro-batches) merge to exactly what the whole
   stream gives, and the window's mean comes from the merged integers.
3. **The distances** (:func:`mean_distances`): the Euclidean distance between the
   window's mean and the reference's, and the cosine distance between them.
4. **When a distance means drift** (:func:`distance_thresholds`): the distance a
   stationary window of the same size exceeds with probability ``alpha``, by
   simulating the central limit theorem's null in the eigenbasis. Fixed
   thresholds cannot serve here: the noise in a mean embedding's distance grows
   with the dimension and the spread, and shrinks with the window.

>>> rng = np.random.default_rng(0)
>>> scales = np.linspace(1.0, 0.1, 16)
>>> reference = fit_embedding(rng.normal(size=(4000, 16)) * scales + 1.0)
>>> reference.components.shape  # the top 8 of 16 principal directions
(8, 16)
>>> euclidean, cosine = distance_thresholds(reference, window_size=200, alpha=0.01)
>>> window = EmbeddingCounts(16)
>>> for batch in np.array_split(rng.normal(size=(200, 16)) * scales + 1.0, 3):
...     window.update(batch)
>>> [bool(d < t) for d, t in zip(mean_distances(reference, window.mean), (euclidean, cosine))]
[True, True]
>>> shifted = EmbeddingCounts(16)
>>> shifted.update(rng.normal(size=(200, 16)) * scales + 1.0 + 0.5 * reference.components[0])
>>> [bool(d > t) for d, t in zip(mean_distances(reference, shifted.mean), (euclidean, cosine))]
[True, True]

Imports numpy, scipy (through :mod:`~streamwatch.core.thresholds`), the standard
library and :mod:`streamwatch.core` only. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamwatch.core.thresholds import CALIBRATION_DRAWS, tail_quantile

__all__ = [
    "COUNTS_FIELDS",
    "DEFAULT_COMPONENTS",
    "MAX_EMBEDDING_VALUE",
    "EmbeddingCounts",
    "EmbeddingReference",
    "distance_thresholds",
    "fit_embedding",
    "mean_distances",
]

#: Principal components whose projections are kept for testing (fewer when the dimensions or rows are fewer).
DEFAULT_COMPONENTS = 8
#: A value is clipped to ± this before its fixed-point conversion. Embeddings are O(1); only garbage gets
#: near it, and the cap bounds a value's units (1e15) so that a batch's int64 sums can be guarded cheaply.
MAX_EMBEDDING_VALUE = 1e6
#: The fixed-point unit of the sums: 1e-9 (``_UNITS_PER_VALUE`` units per unit of value).
_UNITS_PER_VALUE = 10**9
#: The attributes :class:`EmbeddingCounts` sets: what a checkpoint writes, field by field.
COUNTS_FIELDS: tuple[str, ...] = ("dims", "n", "_units")
#: Draws simulated at once in :func:`distance_thresholds`: about this many normals (8 MB), whatever the dimension.
_CHUNK_VALUES = 2**20
#: The largest cosine distance there is (opposite directions); a fitted tail never goes past it.
_MAX_COSINE = 2.0


class EmbeddingReference:
    """The reference embeddings' mean and covariance spectrum: what the distances and thresholds need.

    Plain data, so a profile can store it as JSON (:meth:`to_dict`, :meth:`from_dict`):

    - ``rows``: how many reference embeddings it was fitted on (``N``, for the thresholds' null);
    - ``mean``: the reference mean vector, ``(d,)``;
    - ``eigenvalues``: of the reference covariance (``ddof=1``), all ``d``, descending, none below 0;
    - ``mean_coordinates``: ``mean @ eigenvectors``, the mean's coordinates in the eigenbasis, ``(d,)``;
    - ``components``: the top ``k`` eigenvectors, ``(k, d)``, orthonormal rows.

    Build one with :func:`fit_embedding`.

    >>> reference = EmbeddingReference([1.0, 2.0], [4.0, 1.0], [1.0, 2.0], [[1.0, 0.0]], rows=10)
    >>> reference.dims, reference.project(np.array([[3.0, 0.0], [1.0, 5.0]])).tolist()
    (2, [[2.0], [0.0]])
    """

    def __init__(
        self,
        mean: Sequence[float] | np.ndarray,
        eigenvalues: Sequence[float] | np.ndarray,
        mean_coordinates: Sequence[float] | np.ndarray,
        components: Sequence[Sequence[float]] | np.ndarray,
        rows: int,
    ) -> None:
        self.mean = np.array(mean, dtype=np.float64)
        self.eigenvalues = np.array(eigenvalues, dtype=np.float64)
        self.mean_coordinates = np.array(mean_coordinates, dtype=np.float64)
        self.components = np.array(components, dtype=np.float64)
        self.rows = int(rows)
        if self.mean.ndim != 1 or self.mean.size < 1:
            raise ValueError(f"the mean must be a non-empty vector, got shape {self.mean.shape}")
        dims = self.mean.size
        if self.eigenvalues.shape != (dims,) or self.mean_coordinates.shape != (dims,):
            raise ValueError(
                f"need {dims} eigenvalues and {dims} mean coordinates, "
                f"got shapes {self.eigenvalues.shape} and {self.mean_coordinates.shape}"
            )
        if self.components.ndim != 2 or self.components.shape[0] < 1 or self.components.shape[1] != dims:
            raise ValueError(f"components must have shape (k >= 1, {dims}), got {self.components.shape}")
        if self.rows < 2:
            raise ValueError(f"a reference needs at least 2 rows, got {self.rows}")
        arrays = (self.mean, self.eigenvalues, self.mean_coordinates, self.components)
        if not all(np.all(np.isfinite(array)) for array in arrays):
            raise ValueError("an embedding reference must be finite")
        if np.any(self.eigenvalues < 0):
            raise ValueError("covariance eigenvalues cannot be negative")

    @property
    def dims(self) -> int:
        """The embedding's dimension ``d``."""
        return int(self.mean.size)

    def project(self, matrix: np.ndarray) -> np.ndarray:
        """Rows' coordinates on the components, centred on the reference mean: ``(n, d) -> (n, k)``."""
        values = _matrix(matrix, self.dims)
        projected: np.ndarray = (values - self.mean) @ self.components.T
        return projected

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (a profile's JSON); :meth:`from_dict` rebuilds the same reference exactly.

        >>> reference = fit_embedding(np.array([[0.0, 1.0], [2.0, 1.5], [1.0, -1.0]]))
        >>> EmbeddingReference.from_dict(reference.to_dict()) == reference
        True
        """
        return {
            "rows": self.rows,
            "mean": self.mean.tolist(),
            "eigenvalues": self.eigenvalues.tolist(),
            "mean_coordinates": self.mean_coordinates.tolist(),
            "components": self.components.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingReference:
        """The reference :meth:`to_dict` wrote; a ``ValueError`` says what is wrong with a bad one."""
        missing = sorted({"rows", "mean", "eigenvalues", "mean_coordinates", "components"} - data.keys())
        if missing:
            raise ValueError(f"an embedding reference needs {missing}")
        return cls(data["mean"], data["eigenvalues"], data["mean_coordinates"], data["components"], data["rows"])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EmbeddingReference)
            and self.rows == other.rows
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.eigenvalues, other.eigenvalues)
            and np.array_equal(self.mean_coordinates, other.mean_coordinates)
            and np.array_equal(self.components, other.components)
        )

    def __repr__(self) -> str:
        return f"EmbeddingReference(dims={self.dims}, rows={self.rows}, components={self.components.shape[0]})"


def fit_embedding(matrix: np.ndarray, components: int = DEFAULT_COMPONENTS) -> EmbeddingReference:
    """Fit the reference on its embeddings, ``(N, d)``: mean, covariance spectrum and top components.

    Eigenvalues are those of the sample covariance (``ddof=1``), sorted descending and clipped at 0
    (rounding leaves the null ones of a rank-deficient covariance slightly negative). ``k`` components are
    kept: ``components``, or fewer when the dimensions or the rows (a covariance of ``N`` rows has rank at
    most ``N - 1``) are fewer. Each eigenvector's sign makes its largest entry (in absolute value)
    positive, so the same reference always gives the same components and mean coordinates.

    With ``d <= N`` the ``d x d`` covariance is decomposed (``np.linalg.eigh``, about 17 s at ``d = 4096``).
    With ``d > N`` the covariance has rank below ``N`` and the SVD of the centred ``N x d`` matrix is
    cheaper and gives the same eigenvalues and components; the ``d - N`` null eigenvectors it does not
    give are then chosen so that the mean's part outside the SVD's directions lies along the first of
    them (one coordinate, its norm), an orthonormal basis like any other of that null space. Which basis
    is chosen there makes no difference to the distances or thresholds: null directions carry no noise.

    >>> fit_embedding(np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 2.0]])).eigenvalues.tolist()
    [1.0, 0.0]
    >>> fit_embedding(np.zeros((1, 2)))
    Traceback (most recent call last):
    ...
    ValueError: fitting an embedding reference needs at least 2 rows, got 1
    """
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"embeddings must be a 2-D array of shape (rows, dims >= 1), got shape {values.shape}")
    rows, dims = values.shape
    if rows < 2:
        raise ValueError(f"fitting an embedding reference needs at least 2 rows, got {rows}")
    if not np.all(np.isfinite(values)):
        raise ValueError("reference embeddings must be finite (no NaN or infinite values)")
    if components < 1:
        raise ValueError(f"components must be at least 1, got {components}")
    mean = values.mean(axis=0)
    centred = values - mean
    if dims <= rows:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / (rows - 1))
        eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]  # eigh sorts ascending
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        eigenvalues = np.concatenate([singular**2 / (rows - 1), np.zeros(dims - singular.size)])
        vectors = vt.T
    largest = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])]
    vectors = vectors * np.where(largest < 0, -1.0, 1.0)
    coordinates = mean @ vectors
    if vectors.shape[1] < dims:
        outside = mean - vectors @ coordinates
        coordinates = np.concatenate([coordinates, [float(np.linalg.norm(outside))], np.zeros(dims - rows - 1)])
    kept = min(components, dims, rows - 1)
    return EmbeddingReference(mean, np.maximum(eigenvalues, 0.0), coordinates, vectors[:, :kept].T.copy(), rows)


class EmbeddingCounts:
    """A window's embeddings, mergeable exactly: the row count and each dimension's sum in fixed point.

    Each value is clipped to ± :data:`MAX_EMBEDDING_VALUE` and rounded to the nearest integer unit of
    1e-9; the sums are Python integers (a list, one per dimension), which never overflow, so merging the
    partials of any split of a stream gives exactly what the whole stream gives. :attr:`mean` is
    computed from the merged integers.

    >>> a, b = EmbeddingCounts(2), EmbeddingCounts(2)
    >>> a.update(np.array([[1.0, 0.5], [2.0, -0.5]]))
    >>> b.update(np.array([[3.0, 3.0]]))
    >>> a.merge(b)
    >>> a.n, a.mean.tolist()
    (3, [2.0, 1.0])
    >>> EmbeddingCounts(2).mean.tolist()
    [nan, nan]
    """

    def __init__(self, dims: int) -> None:
        if dims < 1:
            raise ValueError(f"an embedding needs at least one dimension, got {dims}")
        self.dims = int(dims)
        self.n = 0
        self._units = [0] * self.dims

    def update(self, matrix: np.ndarray) -> None:
        """Count a batch of embeddings, ``(n, dims)``; a NaN is refused (``ValueError``, nothing counted).

        An infinite value is clipped like any value past the cap: the row still counts, and its window's
        mean is far off, which is what garbage should look like. A NaN has no value to clip to, and
        dropping its row would make the count disagree with the caller's, so the caller must decide.
        """
        values = _matrix(matrix, self.dims)
        if not values.shape[0]:
            return
        if np.isnan(values).any():
            raise ValueError("embeddings must not contain NaN")
        units = np.rint(np.clip(values, -MAX_EMBEDDING_VALUE, MAX_EMBEDDING_VALUE) * _UNITS_PER_VALUE).astype(
            np.int64
        )  # at most 1e15 in magnitude
        largest = int(np.abs(units).max())
        # An int64 column sum is exact while it cannot overflow: sum slices of rows small enough for that
        # (all of them at once for any real embedding), then add the slices' sums as Python integers.
        step = units.shape[0] if largest == 0 else max(1, min(units.shape[0], 2**62 // largest))
        sums = self._units
        for start in range(0, units.shape[0], step):
            sums = [a + b for a, b in zip(sums, units[start : start + step].sum(axis=0).tolist(), strict=True)]
        self._units = sums
        self.n += int(units.shape[0])

    def merge(self, other: EmbeddingCounts) -> None:
        """Add ``other``'s rows (same dimension) to this window's."""
        if other.dims != self.dims:
            raise ValueError(f"cannot merge embeddings of {other.dims} dimensions into {self.dims}")
        self._units = [a + b for a, b in zip(self._units, other._units, strict=True)]
        self.n += other.n

    def copy(self) -> EmbeddingCounts:
        new = EmbeddingCounts(self.dims)
        new.merge(self)
        return new

    @property
    def mean(self) -> np.ndarray:
        """The mean embedding, ``(dims,)`` (NaNs for no rows), each entry correctly rounded from its sum."""
        if not self.n:
            return np.full(self.dims, np.nan)
        scale = self.n * _UNITS_PER_VALUE
        return np.array([units / scale for units in self._units], dtype=np.float64)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EmbeddingCounts) and (self.dims, self.n, self._units) == (
            other.dims,
            other.n,
            other._units,
        )

    def __repr__(self) -> str:
        return f"EmbeddingCounts(dims={self.dims}, n={self.n})"


def mean_distances(reference: EmbeddingReference, window_mean: np.ndarray) -> tuple[float, float]:
    """The window mean's ``(euclidean, cosine)`` distances from the reference mean.

    Euclidean: ``||m - mu||``. Cosine: the distance ``1 - cos(m, mu)``, in ``[0, 2]``. A zero vector has no
    direction, so when either norm is 0 the cosine distance is 1.0 (as for orthogonal vectors). It is
    computed as half the squared distance between the unit vectors, which equals ``1 - cos`` and keeps
    its precision when the two directions nearly agree (where ``1 - cos`` would cancel).

    >>> reference = EmbeddingReference([1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [[1.0, 0.0]], rows=10)
    >>> mean_distances(reference, np.array([0.0, 2.0]))
    (2.23606797749979, 1.0)
    """
    m = np.asarray(window_mean, dtype=np.float64)
    if m.shape != (reference.dims,):
        raise ValueError(f"the window mean must have shape ({reference.dims},), got {m.shape}")
    mu = reference.mean
    euclidean = float(np.linalg.norm(m - mu))
    m_norm, mu_norm = float(np.linalg.norm(m)), float(np.linalg.norm(mu))
    if not (m_norm > 0 and mu_norm > 0):
        return euclidean, math.nan if math.isnan(m_norm) else 1.0
    gap = m / m_norm - mu / mu_norm
    return euclidean, min(float(gap @ gap) / 2, _MAX_COSINE)


def distance_thresholds(
    reference: EmbeddingReference,
    window_size: int,
    alpha: float,
    *,
    draws: int = CALIBRATION_DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``(euclidean, cosine)`` distances a stationary window of ``window_size`` rows exceeds with
    probability ``alpha``.

    **The null.** The reference mean is itself a sample's, so a stationary window's mean strays from it by
    ``d ~ N(0, c * Sigma)`` with ``c = 1/n + 1/N`` (central limit theorem, ``n`` the window's rows, ``N``
    the reference's, ``Sigma`` its covariance). In the eigenbasis ``d = sqrt(c) * sum_i sqrt(lambda_i) z_i
    v_i`` with ``z`` standard normal, so ``|d|^2 = c * sum_i lambda_i z_i^2`` and ``mu . d = sqrt(c) *
    sum_i sqrt(lambda_i) a_i z_i`` (``a`` the mean's coordinates): both distances follow from ``z``, the
    spectrum and ``a``, without the eigenvectors. ``draws`` such ``z`` are simulated (fixed ``seed``: the
    same reference always gives the same thresholds).

    **The tail.** Each threshold is :func:`~streamwatch.core.thresholds.tail_quantile` of its simulated
    distances: the empirical ``1 - alpha`` quantile when ``alpha * draws >= 10``, a fitted tail beyond.
    The Euclidean distance's square is a weighted chi-square, so its tail is fitted on the squares
    (``squared=True``); the cosine distance is already quadratic in ``d`` (about ``|d_perp|^2 / 2|mu|^2``
    for a small ``d``), so on itself (``squared=False``). The cosine threshold is capped at 2, the
    largest cosine distance. A reference mean of 0 makes every cosine distance 1 (see
    :func:`mean_distances`), and so the cosine threshold: it never alerts.

    >>> reference = EmbeddingReference([3.0, 4.0], [1.0, 1.0], [3.0, 4.0], [[1.0, 0.0]], rows=1000)
    >>> small, large = distance_thresholds(reference, 10, 0.01), distance_thresholds(reference, 1000, 0.01)
    >>> bool(small[0] > large[0] > 0 and small[1] > large[1] > 0)
    True
    >>> distance_thresholds(reference, 0, 0.01)
    Traceback (most recent call last):
    ...
    ValueError: a window needs at least one row, got 0
    """
    if window_size < 1:
        raise ValueError(f"a window needs at least one row, got {window_size}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    c = 1 / window_size + 1 / reference.rows
    spread = np.sqrt(reference.eigenvalues)
    along_mean = spread * reference.mean_coordinates
    r2 = float(reference.mean_coordinates @ reference.mean_coordinates)
    r = math.sqrt(r2)
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_VALUES // reference.dims)
    squares = np.empty(draws)
    dots = np.empty(draws)
    for start in range(0, draws, step):
        z = rng.standard_normal((min(step, draws - start), reference.dims))
        squares[start : start + z.shape[0]] = c * ((z * z) @ reference.eigenvalues)
        dots[start : start + z.shape[0]] = math.sqrt(c) * (z @ along_mean)
    euclidean = tail_quantile(np.sqrt(squares), alpha, squared=True)
    if r == 0:
        return euclidean, 1.0
    return euclidean, min(tail_quantile(_cosine_distances(r2, r, dots, squares), alpha, squared=False), _MAX_COSINE)


def _cosine_distances(r2: float, r: float, dots: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """``1 - cos(mu, mu + d)`` from ``|mu|^2``, ``mu . d`` and ``|d|^2``, without cancelling when it is small.

    ``r s - (r^2 + p) = (r^2 q - p^2) / (r s + r^2 + p)`` (``s = |mu + d|``, ``p = mu . d``, ``q = |d|^2``):
    where the angle is acute the right side has no cancellation but in ``r^2 q - p^2 = r^2 |d_perp|^2``,
    which is small only when ``d`` lies along ``mu``; elsewhere ``1 - cos`` has none to begin with.
    """
    s = np.sqrt(np.maximum(r2 + 2 * dots + squares, 0.0))
    along = r2 + dots
    with np.errstate(divide="ignore", invalid="ignore"):
        acute = np.maximum(r2 * squares - dots * dots, 0.0) / (r * s * (r * s + along))
        obtuse = 1 - along / (r * s)
    distances: np.ndarray = np.where(s > 0, np.where(along > 0, acute, obtuse), 1.0)
    return distances


def _matrix(matrix: np.ndarray, dims: int) -> np.ndarray:
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != dims:
        raise ValueError(f"embeddings must be a 2-D array of shape (rows, {dims}), got shape {values.shape}")
    return values
