"""Reading training data (CSV or Parquet, embeddings from list columns or ``.npy`` files) into columns:
the only module that imports pyarrow."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from streamwatch.errors import ConfigError

__all__ = ["read_columns", "read_embeddings", "sha256_of"]


def sha256_of(path: Path) -> str:
    """The file's SHA-256, so a profile names exactly the data it was built from."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        # Missing numbers become NaN, so numeric columns stay numeric.
        return np.asarray(column.cast(pa.float64()).fill_null(float("nan")).to_numpy(), dtype=float)
    return np.array(column.cast(pa.string()).to_pylist(), dtype=object)


def _is_vector(kind: pa.DataType) -> bool:
    """A list of numbers: an embedding column (Parquet's list, large list or fixed-size list)."""
    lists = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    if not lists:
        return False
    value = kind.value_type
    return bool(pa.types.is_integer(value) or pa.types.is_floating(value))


def _matrix(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
    """An embedding column as rows of floats; a missing vector becomes a row of NaN."""
    vectors = column.to_pylist()
    lengths = {len(v) for v in vectors if v is not None}
    if len(lengths) > 1:
        raise ConfigError(f"{path}: embedding column {name!r} has vectors of {len(lengths)} lengths; one is needed")
    if not lengths or lengths == {0}:
        raise ConfigError(f"{path}: embedding column {name!r} has no vectors")
    dims = lengths.pop()
    rows = [[float("nan")] * dims if v is None else [float("nan") if x is None else x for x in v] for v in vectors]
    return np.array(rows, dtype=float).reshape(len(rows), dims)


def read_embeddings(
    path: Path, files: Mapping[str, Path] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Read training data as :func:`read_columns` does, with its embeddings apart: ``(columns, embeddings, rows)``.

    Embeddings come from a Parquet file's list columns (lists of numbers), and from ``files``: a name and a
    ``.npy`` file of one row per row of the data (the way to give a CSV its embeddings).
    """
    columns, vectors, rows = _read(path)
    for name, npy in (files or {}).items():
        if name in vectors or name in columns:
            raise ConfigError(f"{npy}: embedding {name!r} is also a column of {path}")
        try:
            matrix = np.load(npy, allow_pickle=False)  # never unpickle what a file says
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{npy}: cannot be read as .npy ({str(exc).splitlines()[0]})") from None
        if matrix.ndim != 2 or matrix.shape[0] != rows or matrix.dtype.kind not in "biuf":
            raise ConfigError(
                f"{npy}: expected {rows} rows of numbers (one per row of {path.name}), got shape {matrix.shape}"
                f" of {matrix.dtype}"
            )
        vectors[name] = matrix.astype(float)
    return columns, vectors, rows


def read_columns(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """Read a ``.csv`` or ``.parquet`` file into ``{column: array}`` and its row count.

    Numeric and boolean columns become float arrays with NaN for missing
    values; every other column becomes an object array of strings with None.
    Lists of numbers (embeddings) are left out: see :func:`read_embeddings`.
    Errors are one line naming the file.
    """
    columns, _, rows = _read(path)
    return columns, rows


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            table = pyarrow.csv.read_csv(path)
        elif suffix in {".parquet", ".pq"}:
            table = pyarrow.parquet.read_table(path)
        else:
            raise ConfigError(f"{path}: expected a .csv or .parquet file")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot be read as {suffix[1:]} ({first_line})") from None
    if table.num_rows == 0:
        raise ConfigError(f"{path}: the data set is empty")
    columns, vectors = {}, {}
    for name in table.column_names:
        column = table.column(name)
        if _is_vector(column.type):
            vectors[name] = _matrix(path, name, column)
        else:
            columns[name] = _to_numpy(column)
    return columns, vectors, table.num_rows
