"""Reading training data, and the `streamwatch profile` command, on real CSV and Parquet files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamwatch.adapters.datasets import read_columns, sha256_of
from streamwatch.errors import ConfigError
from streamwatch.profiles.model import ReferenceProfile

CSV = "age,income,city,gender,y,p\n30,1000.5,north,F,1,0.9\n40,,south,M,0,0.2\n,2500,north,F,1,0.7\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamwatch", *args], capture_output=True, text=True, timeout=120)


def test_csv_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    columns, rows = read_columns(path)
    assert rows == 3
    assert np.array_equal(columns["income"], [1000.5, np.nan, 2500.0], equal_nan=True)
    assert columns["city"].tolist() == ["north", "south", "north"]


def test_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"flag": [True, None, False], "name": ["a", None, "c"]}), path)
    columns, rows = read_columns(path)
    assert rows == 3
    assert np.array_equal(columns["flag"], [1.0, np.nan, 0.0], equal_nan=True)
    assert columns["name"].tolist() == ["a", None, "c"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("train.txt", "a\n1\n", "expected a .csv or .parquet file"),
        ("empty.csv", "a,b\n", "the data set is empty"),
        ("broken.parquet", "not parquet", "cannot be read as parquet"),
        ("ragged.csv", "a,b\n1,2\n3\n", "cannot be read as csv"),
    ],
)
def test_bad_files_get_one_line(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        read_columns(path)
    assert "\n" not in str(caught.value)


def test_profile_command(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text(CSV)
    out = tmp_path / "ref.json"
    result = run(
        "profile",
        str(data),
        "--model",
        "credit-risk",
        "--version",
        "3.1.0",
        "--label-column",
        "y",
        "--score-column",
        "p",
        "--segments",
        "gender",
        "--git-sha",
        "4be1c0d",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    profile = ReferenceProfile.model_validate_json(out.read_text())
    assert profile.lineage.content_sha256 == sha256_of(data) and profile.lineage.rows == 3
    assert profile.lineage.git_sha == "4be1c0d" and profile.lineage.model_version == "3.1.0"
    assert sorted(profile.features) == ["age", "city", "income"]
    assert [(s.value, s.label_positive_rate) for s in profile.slices] == [("F", 1.0), ("M", 0.0)]
    assert json.loads(out.read_text())["profile_version"] == 4
    assert profile.task == "binary_classification"  # inferred from the label column, and stated
    assert profile.calibration is None  # three rows: too few labels to calibrate the score on
    assert "binary_classification" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label-column", "target"], "column not in the data: target"),
        (["--score-column", "city"], "score column 'city' must be numeric"),
        (["--label-column", "y", "--task", "ranking"], "task 'ranking' is not one of binary_classification"),
    ],
)
def test_profile_command_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "train.csv"
    data.write_text(CSV)
    result = run("profile", str(data), "--model", "m", "--version", "1", "--out", str(tmp_path / "o.json"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _vectors(rows: int, dims: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, dims)) + np.arange(dims)


def test_embeddings_come_from_parquet_list_columns_and_npy_files(tmp_path: Path) -> None:
    rows = 300
    text, image = _vectors(rows, 16), _vectors(rows, 4, seed=1)
    vectors = text.tolist()
    vectors[5] = None  # a row without its embedding is left out of the embedding's profile
    table = pa.table(
        {
            "age": np.arange(rows, dtype=float),
            "text": pa.array(vectors, type=pa.list_(pa.float32())),
            "y": np.arange(rows) % 2,
        }
    )
    parquet = tmp_path / "train.parquet"
    pq.write_table(table, parquet)
    npy = tmp_path / "train.image.npy"
    np.save(npy, image)
    out = tmp_path / "ref.json"
    result = run(
        "profile", str(parquet), "--model", "m", "--version", "1", "--out", str(out), "--embedding", f"image={npy}"
    )
    assert result.returncode == 0, result.stderr
    assert "embedding image (4 dims), embedding text (16 dims)" in result.stdout
    profile = ReferenceProfile.model_validate_json(out.read_text())
    assert sorted(profile.features) == ["age", "y"]  # the list column is no feature
    assert profile.embeddings["text"].rows == rows - 1 and profile.embeddings["image"].rows == rows
    kept = np.delete(text, 5, axis=0).astype(np.float32).astype(float)
    assert np.allclose(profile.embeddings["text"].mean, kept.mean(axis=0))
    assert np.allclose(profile.embeddings["image"].mean, image.mean(axis=0))
    assert len(profile.embeddings["text"].projections) == 8 and len(profile.embeddings["image"].projections) == 4


@pytest.mark.parametrize(
    ("argument", "words"),
    [
        ("text", "expected NAME=PATH"),
        ("text={dir}/missing.npy", "cannot be read as .npy"),
        ("text={dir}/short.npy", "expected 3 rows of numbers"),
        ("age={dir}/good.npy", "also a column"),
    ],
)
def test_bad_embedding_files_get_one_line(tmp_path: Path, argument: str, words: str) -> None:
    data = tmp_path / "train.csv"
    data.write_text(CSV)
    np.save(tmp_path / "short.npy", np.zeros((2, 4)))
    np.save(tmp_path / "good.npy", np.zeros((3, 4)))
    result = run(
        "profile", str(data), "--model", "m", "--version", "1", "--out", str(tmp_path / "r.json"),
        "--embedding", argument.format(dir=tmp_path),
    )  # fmt: skip
    assert result.returncode != 0
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_embedding_of_too_few_rows_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text(CSV)
    np.save(tmp_path / "e.npy", np.zeros((3, 4)))
    result = run(
        "profile", str(data), "--model", "m", "--version", "1", "--out", str(tmp_path / "r.json"),
        "--embedding", f"e={tmp_path / 'e.npy'}",
    )  # fmt: skip
    assert result.returncode != 0 and "embedding 'e': 3 complete rows" in result.stderr, result.stderr
