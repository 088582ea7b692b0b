"""Reading training data (CSV or Parquet) into columns: the only module that imports pyarrow."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from streamwatch.errors import ConfigError

__all__ = ["read_columns", "sha256_of"]


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


def read_columns(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """Read a ``.csv`` or ``.parquet`` file into ``{column: array}`` and its row count.

    Numeric and boolean columns become float arrays with NaN for missing
    values; every other column becomes an object array of strings with None.
    Errors are one line naming the file.
    """
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
    return {name: _to_numpy(table.column(name)) for name in table.column_names}, table.num_rows
