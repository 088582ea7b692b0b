"""Reference profiles: what the training data looked like, computed once.

A profile is the baseline every window is compared with. It is versioned and
self-describing (``schemas/profile.schema.json`` is generated from
:class:`ReferenceProfile`) and carries its lineage, so every drift figure and
alert can say which training data it was measured against.

Building a profile is pure: it takes columns as numpy arrays. Reading files,
hashing them and reading the clock happen in :mod:`streamwatch.adapters.datasets` and
the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Annotated, Final, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from streamwatch.contract.events import Key, Name, Timestamp
from streamwatch.core.binning import bin_edges
from streamwatch.core.categories import CategoryCounts
from streamwatch.core.embedding import DEFAULT_COMPONENTS, EmbeddingReference, fit_embedding
from streamwatch.core.estimation import ESTIMATED_METRICS, MIN_CALIBRATION_LABELS, calibrate_bins, estimate, score_cells
from streamwatch.core.histogram import NumericHistogram
from streamwatch.core.multiclass import class_name
from streamwatch.core.multivariate import DEFAULT_VARIANCE_SHARE, ReconstructionModel, fit_reconstruction

__all__ = [
    "PROFILE_VERSION",
    "TASKS",
    "Calibration",
    "CategoricalProfile",
    "EmbeddingProfile",
    "Lineage",
    "MultivariateProfile",
    "NumericProfile",
    "ReferenceProfile",
    "SliceBaseRate",
    "build_profile",
    "infer_task",
    "projection_name",
]

#: Version 2 added the task, the classes and the calibration; version 3 the multivariate reconstruction;
#: version 4 the embeddings. Older profiles are read as they are.
PROFILE_VERSION: Final = 4
#: Rows a reference needs before its features' joint distribution is profiled (a PCA of fewer is noise).
MIN_MULTIVARIATE_ROWS = 200
#: Rows with an embedding a reference needs for it to be profiled (its mean and spread, and the bins of its
#: projections, from fewer are noise).
MIN_EMBEDDING_ROWS = 200
Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: Final[tuple[str, ...]] = ("binary_classification", "multiclass_classification", "regression")
#: Most classes a multiclass profile lists; a label column with more distinct values is not a class.
MAX_CLASSES = 50
#: Most categories kept per categorical feature; the rest are counted together
#: as "other", which lines up with a window's "unseen" count.
DEFAULT_MAX_CATEGORIES = 200


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericProfile(_Frozen):
    """A numeric column: counts on bin edges (see ``core.NumericHistogram``) and summary statistics."""

    kind: Literal["numeric"] = "numeric"
    edges: list[float] = Field(description="Increasing bin edges; counts has one more entry than edges.")
    counts: list[int]
    count: int = Field(description="Values present.")
    missing: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None = Field(description="Population standard deviation; scales the Wasserstein distance.")

    def histogram(self) -> NumericHistogram:
        """The reference as a histogram, ready to compare with a window's."""
        return NumericHistogram.from_counts(
            self.edges,
            self.counts,
            missing=self.missing,
            min=self.min if self.min is not None else np.inf,
            max=self.max if self.max is not None else -np.inf,
        )


class CategoricalProfile(_Frozen):
    """A categorical column: the most frequent categories, the rest counted as other."""

    kind: Literal["categorical"] = "categorical"
    categories: list[str]
    counts: list[int] = Field(description="One count per category, then the count of all other values.")
    count: int
    missing: int
    distinct: int = Field(description="Distinct values in the training data, kept or not.")

    def category_counts(self) -> CategoryCounts:
        return CategoryCounts.from_counts(self.categories, self.counts, missing=self.missing)


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class SliceBaseRate(_Frozen):
    """How one slice behaved in training: its size, positive label rate, selection rate and mean score."""

    segment: Key
    value: str
    count: int
    label_positive_rate: float | None = None
    prediction_positive_rate: float | None = None
    mean_score: float | None = None


class Lineage(_Frozen):
    """Where the profile came from, carried into every metric and alert."""

    model: Name
    model_version: Name
    data_uri: str
    rows: int
    content_sha256: str
    model_artifact_uri: str | None = None
    git_sha: str | None = None
    created_at: Timestamp
    streamwatch_version: str


class Calibration(_Frozen):
    """How the score maps to the probability of the positive class, fitted on the reference's labels: what
    performance estimation before labels (CBPE, ``core.estimation``) rests on."""

    method: Literal["binned_isotonic"] = Field(
        "binned_isotonic",
        description="Isotonic regression of the positive rate over the score's reference bins (core.estimation).",
    )
    probabilities: list[float] = Field(description="Calibrated probability per score bin (one per `score.counts`).")
    labels: int = Field(description="Labelled reference rows the calibration was fitted on.")
    positives: int
    threshold: float | None = Field(
        None, description="With no prediction column: a score at or above this predicts the positive class."
    )
    reference_estimated: dict[str, float] = Field(
        default_factory=dict, description="The estimated metrics of the reference itself: the drop rules' baseline."
    )
    reference_realized: dict[str, float] = Field(
        default_factory=dict, description="The reference's realized metrics, for comparison."
    )
    ece_raw: float | None = Field(
        None, description="Expected calibration error of the raw score (10 equal-count bins)."
    )
    ece_calibrated: float | None = Field(None, description="The same, of the calibrated probabilities (in sample).")


class MultivariateProfile(_Frozen):
    """The features' joint distribution, as NannyML's data reconstruction drift sees it: a PCA of the
    standardised features (numeric, then one-hot of each categorical one's top categories) keeping
    ``variance_share`` of the variance, and the reference's per-row reconstruction errors (each row held
    out of the fit that reconstructs it) as a histogram (``core.multivariate``)."""

    numeric: list[Key] = Field(description="Numeric features, in the order of the model's first columns.")
    categorical: list[Key] = Field(description="Categorical features, in the order of `categories`.")
    variance_share: float
    means: list[float]
    scales: list[float]
    components: list[list[float]] = Field(description="Principal components kept, one per row.")
    categories: list[list[str]] = Field(description="Per categorical feature, the categories one-hot encoded.")
    edges: list[float] = Field(description="Bin edges of the reference's reconstruction errors.")
    counts: list[int] = Field(description="The reference's reconstruction errors on `edges` (one more than edges).")
    mean_error: float

    def model(self) -> ReconstructionModel:
        return ReconstructionModel(self.means, self.scales, self.components, self.categories, len(self.numeric))


class EmbeddingProfile(_Frozen):
    """One embedding of the training data (``core.embedding``): its mean vector, the spectrum of its
    covariance (for the thresholds of the mean's distances), and its first principal components with the
    reference's projections on them, each profiled as a numeric column (for the projections' drift)."""

    dims: int = Field(description="Numbers in each vector: events must send exactly this many.")
    rows: int = Field(description="Reference rows with this embedding.")
    mean: list[float]
    eigenvalues: list[float] = Field(description="The covariance's eigenvalues, largest first.")
    mean_coordinates: list[float] = Field(description="The mean vector in the covariance's eigenbasis.")
    components: list[list[float]] = Field(description="The first principal components, one per row.")
    projections: list[NumericProfile] = Field(description="The reference projected on each component.")

    def reference(self) -> EmbeddingReference:
        return EmbeddingReference(self.mean, self.eigenvalues, self.mean_coordinates, self.components, self.rows)


def projection_name(embedding: str, component: int) -> str:
    """The drift "feature" that is ``embedding`` projected on its ``component``-th principal component (from 0).

    >>> projection_name("text", 0)
    'text#pc1'
    """
    return f"{embedding}#pc{component + 1}"


class ReferenceProfile(_Frozen):
    """The reference profile of one model version's training data."""

    profile_version: Literal[1, 2, 3, 4] = PROFILE_VERSION
    lineage: Lineage
    task: Task | None = Field(None, description="The model's task, as given or inferred from the label column.")
    classes: list[str] | None = Field(None, description="A multiclass model's classes, most frequent first.")
    positive_label: str | None = Field(None, description="Label value counted as positive for rates.")
    calibration: Calibration | None = Field(None, description="The score's calibration, for estimated performance.")
    features: dict[Key, ColumnProfile]
    score: NumericProfile | None = None
    prediction: ColumnProfile | None = None
    label: ColumnProfile | None = None
    slices: list[SliceBaseRate] = Field(default_factory=list)
    multivariate: MultivariateProfile | None = Field(
        None, description="The features' joint distribution, for multivariate drift (two features or more)."
    )
    embeddings: dict[Key, EmbeddingProfile] = Field(default_factory=dict, description="Embeddings, by name.")


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biuf"


def _numeric(values: np.ndarray) -> NumericProfile:
    data = values.astype(float)
    present = data[~np.isnan(data)]
    if present.size == 0:
        return NumericProfile(
            edges=[0.0], counts=[0, 0], count=0, missing=int(data.size), min=None, max=None, mean=None, std=None
        )
    histogram = NumericHistogram(bin_edges(present))
    histogram.update(data)
    return NumericProfile(
        edges=histogram.edges.tolist(),
        counts=histogram.counts.tolist(),
        count=histogram.n,
        missing=histogram.missing,
        min=histogram.min,
        max=histogram.max,
        mean=float(present.mean()),
        std=float(present.std()),
    )


def _categorical(values: np.ndarray, max_categories: int) -> CategoricalProfile:
    present = [str(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    frequencies = Counter(present)
    # Most frequent first; ties by name, so the same data always gives the same profile.
    kept = [c for c, _ in sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))[:max_categories]]
    counts = CategoryCounts(kept)
    counts.update(present)
    return CategoricalProfile(
        categories=kept,
        counts=counts.counts.tolist(),
        count=len(present),
        missing=len(values) - len(present),
        distinct=len(frequencies),
    )


def _column(values: np.ndarray, max_categories: int) -> NumericProfile | CategoricalProfile:
    return _numeric(values) if _is_numeric(values) else _categorical(values, max_categories)


def _positive(values: np.ndarray, positive_label: str) -> np.ndarray:
    """Which values are the positive class: numerically for numeric columns (1, 1.0 and True alike)."""
    if _is_numeric(values):
        try:
            return values.astype(float) == float(positive_label)
        except ValueError:  # a non-numeric positive label never matches a numeric column
            return np.zeros(values.size, dtype=bool)
    return np.array([str(v) == positive_label for v in values], dtype=bool)


def _slices(
    columns: Mapping[str, np.ndarray],
    segments: Sequence[str],
    label: np.ndarray | None,
    prediction: np.ndarray | None,
    score: np.ndarray | None,
    positive_label: str,
) -> list[SliceBaseRate]:
    rows = []
    label_positive = None if label is None else _positive(label, positive_label)
    prediction_positive = None if prediction is None else _positive(prediction, positive_label)
    for segment in segments:
        values = np.array([None if v is None else str(v) for v in columns[segment]], dtype=object)
        for value in sorted({v for v in values if v is not None}):
            mask = values == value
            rows.append(
                SliceBaseRate(
                    segment=segment,
                    value=value,
                    count=int(mask.sum()),
                    label_positive_rate=None if label_positive is None else float(label_positive[mask].mean()),
                    prediction_positive_rate=(
                        None if prediction_positive is None else float(prediction_positive[mask].mean())
                    ),
                    mean_score=None if score is None else float(np.nanmean(score[mask].astype(float))),
                )
            )
    return rows


def _classes(values: np.ndarray) -> list[str]:
    present = [class_name(v) for v in values.tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))]
    frequencies = Counter(present)
    return [c for c, _ in sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))]


def infer_task(label: np.ndarray) -> Task:
    """The task a label column implies: two classes are binary; a few classes (integers or strings) are
    multiclass; other numbers are a regression target.

    >>> infer_task(np.array([0, 1, 1])), infer_task(np.array(["cat", "dog", "cow"], dtype=object))
    ('binary_classification', 'multiclass_classification')
    >>> infer_task(np.array([0.5, 1.25, 3.0])), infer_task(np.array([1.0, 2.0, 3.0, 1.0]))
    ('regression', 'multiclass_classification')
    """
    classes = _classes(label)
    if len(classes) <= 2:
        return "binary_classification"
    if _is_numeric(label):
        data = label.astype(float)
        data = data[~np.isnan(data)]
        integral = bool(np.all(data == np.round(data)))
        return "multiclass_classification" if integral and len(classes) <= MAX_CLASSES else "regression"
    if len(classes) > MAX_CLASSES:
        raise ValueError(
            f"the label column has {len(classes)} distinct strings: more than {MAX_CLASSES} classes is not a "
            "task streamwatch supports"
        )
    return "multiclass_classification"


def _ece(probabilities: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of the probabilities (NannyML's measure)."""
    order = np.argsort(probabilities, kind="stable")
    groups = np.array_split(order, min(bins, order.size))
    return float(sum(abs(probabilities[g].mean() - truth[g].mean()) * g.size for g in groups if g.size) / order.size)


def _realized(truth: np.ndarray, predicted: np.ndarray, score: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(truth & predicted))
    fp, fn = float(np.sum(~truth & predicted)), float(np.sum(truth & ~predicted))
    n = float(truth.size)
    out = {"accuracy": float(np.mean(truth == predicted))}
    if tp + fp:
        out["precision"] = tp / (tp + fp)
    if tp + fn:
        out["recall"] = tp / (tp + fn)
    if 2 * tp + fp + fn:
        out["f1"] = 2 * tp / (2 * tp + fp + fn)
    positives, negatives = int(truth.sum()), int(n - truth.sum())
    if positives and negatives:
        from scipy.stats import rankdata  # the ROC AUC as the Mann-Whitney U, ties halved

        ranks = rankdata(score)
        out["roc_auc"] = float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))
    return out


def _calibration(
    score: np.ndarray, label: np.ndarray, prediction: np.ndarray | None, edges: list[float], positive_label: str
) -> Calibration | None:
    """Fit the score's calibration on the labelled, scored reference rows (None with too few of a class)."""
    truth_all = _positive(label, positive_label)
    known = np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in label.tolist()])
    scores = score.astype(float)
    kept = known & ~np.isnan(scores)
    truth, scores = truth_all[kept], scores[kept]
    positives = int(truth.sum())
    if positives < MIN_CALIBRATION_LABELS or truth.size - positives < MIN_CALIBRATION_LABELS:
        return None
    threshold = None
    if prediction is not None:
        predicted = _positive(prediction, positive_label)[kept]
    else:
        threshold = 0.5
        predicted = scores >= threshold
    edge_array = np.asarray(edges, dtype=float)
    cells = score_cells(edge_array, scores)
    size = edge_array.size + 1
    totals = np.bincount(cells, minlength=size)
    probabilities = calibrate_bins(totals, np.bincount(cells, weights=truth, minlength=size).round())
    counts = np.bincount(predicted.astype(np.intp) * size + cells, minlength=2 * size).reshape(2, size)
    estimated = estimate(counts, probabilities)
    return Calibration(
        probabilities=probabilities.tolist(),
        labels=int(truth.size),
        positives=positives,
        threshold=threshold,
        reference_estimated={m: e.value for m, e in estimated.items() if not np.isnan(e.value)},
        reference_realized={m: v for m, v in _realized(truth, predicted, scores).items() if m in ESTIMATED_METRICS},
        ece_raw=_ece(scores, truth),
        ece_calibrated=_ece(probabilities[cells], truth),
    )


def _multivariate(
    columns: Mapping[str, np.ndarray], features: Mapping[str, NumericProfile | CategoricalProfile]
) -> MultivariateProfile | None:
    """The reconstruction of the features' joint distribution, or None with fewer than two features or
    :data:`MIN_MULTIVARIATE_ROWS` rows."""
    numeric = sorted(name for name, f in features.items() if isinstance(f, NumericProfile) and f.count)
    categorical = sorted(name for name, f in features.items() if isinstance(f, CategoricalProfile) and f.count)
    rows = len(next(iter(columns.values()))) if columns else 0
    if len(numeric) + len(categorical) < 2 or rows < MIN_MULTIVARIATE_ROWS:
        return None
    matrix = np.column_stack([columns[name].astype(float) for name in numeric]) if numeric else np.zeros((rows, 0))
    model, errors = fit_reconstruction(matrix, [columns[name] for name in categorical])
    histogram = NumericHistogram(bin_edges(errors))
    histogram.update(errors)
    return MultivariateProfile(
        numeric=numeric,
        categorical=categorical,
        variance_share=DEFAULT_VARIANCE_SHARE,
        means=model.means.tolist(),
        scales=model.scales.tolist(),
        components=model.components.tolist(),
        categories=model.categories,
        edges=histogram.edges.tolist(),
        counts=histogram.counts.tolist(),
        mean_error=float(errors.mean()),
    )


def _embedding(name: str, matrix: np.ndarray) -> EmbeddingProfile:
    """Profile one embedding from its reference rows; rows with a missing or non-finite value are left out."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"embedding {name!r}: expected rows of numbers (a 2-D array), got shape {values.shape}")
    kept = values[np.isfinite(values).all(axis=1)]
    if kept.shape[0] < MIN_EMBEDDING_ROWS:
        raise ValueError(
            f"embedding {name!r}: {kept.shape[0]} complete rows; a reference needs at least {MIN_EMBEDDING_ROWS}"
        )
    fitted = fit_embedding(kept, DEFAULT_COMPONENTS)
    projected = fitted.project(kept)
    return EmbeddingProfile(
        dims=fitted.dims,
        rows=fitted.rows,
        mean=fitted.mean.tolist(),
        eigenvalues=fitted.eigenvalues.tolist(),
        mean_coordinates=fitted.mean_coordinates.tolist(),
        components=fitted.components.tolist(),
        projections=[_numeric(projected[:, i]) for i in range(projected.shape[1])],
    )


def build_profile(
    columns: Mapping[str, np.ndarray],
    *,
    lineage: Lineage,
    label_column: str | None = None,
    score_column: str | None = None,
    prediction_column: str | None = None,
    segments: Sequence[str] = (),
    positive_label: str = "1",
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    task: str | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> ReferenceProfile:
    """Profile a training set given as columns (numeric arrays with NaN, or object arrays with None).

    Every column that is not the label, score, prediction or a segment is a feature. ``embeddings`` maps
    a name to its rows, a 2-D array (a row of NaN where a row has none).

    >>> import numpy as np
    >>> lineage = Lineage(model="m", model_version="1", data_uri="train.csv", rows=4, content_sha256="0" * 64,
    ...                   created_at="2026-11-23T00:00:00Z", streamwatch_version="0.1.0")
    >>> profile = build_profile({"age": np.array([20.0, 30.0, np.nan, 30.0]),
    ...                          "city": np.array(["a", "b", "a", None], dtype=object),
    ...                          "y": np.array([1, 0, 1, 1])}, lineage=lineage, label_column="y")
    >>> profile.features["age"].edges, profile.features["age"].counts, profile.features["age"].missing
    ([20.0, 30.0], [0, 1, 2], 1)
    >>> profile.features["city"].categories, profile.features["city"].counts, profile.label.kind
    (['a', 'b'], [2, 1, 0], 'numeric')
    """
    special = {c for c in (label_column, score_column, prediction_column) if c} | set(segments)
    missing = [c for c in special if c not in columns]
    if missing:
        raise KeyError(f"column not in the data: {', '.join(sorted(missing))}")
    features = {name: _column(values, max_categories) for name, values in columns.items() if name not in special}
    label = columns.get(label_column) if label_column else None
    prediction = columns.get(prediction_column) if prediction_column else None
    score = columns.get(score_column) if score_column else None
    if score is not None and not _is_numeric(score):
        raise ValueError(f"score column {score_column!r} must be numeric")
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if task is None and label is not None:
        task = infer_task(label)
    score_profile = None if score is None else _numeric(score)
    calibration = None
    binary = task == "binary_classification"
    if binary and label is not None and score is not None and score_profile is not None and score_profile.count:
        calibration = _calibration(score, label, prediction, score_profile.edges, positive_label)
    classes = None
    if task == "multiclass_classification":
        column = label if label is not None else prediction
        found = _classes(column) if column is not None else []
        if len(found) > MAX_CLASSES:
            raise ValueError(f"{len(found)} classes: a multiclass model may have at most {MAX_CLASSES}")
        classes = found
    return ReferenceProfile(
        lineage=lineage,
        task=cast(Task | None, task),
        classes=classes,
        positive_label=positive_label if (label is not None or prediction is not None) else None,
        calibration=calibration,
        features=features,
        score=score_profile,
        prediction=None if prediction is None else _column(prediction, max_categories),
        label=None if label is None else _column(label, max_categories),
        slices=_slices(columns, segments, label, prediction, score, positive_label),
        multivariate=_multivariate({n: v for n, v in columns.items() if n in features}, features),
        embeddings={name: _embedding(name, matrix) for name, matrix in sorted((embeddings or {}).items())},
    )
