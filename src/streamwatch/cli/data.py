"""``streamwatch schemas``, ``validate`` and ``profile``: the JSON Schemas, event files and reference profiles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from streamwatch import __version__
from streamwatch.cli.app import (
    app,
)
from streamwatch.errors import ContractError, StreamwatchError


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Directory to write the JSON Schema files to.")] = Path("schemas"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the files differ instead of writing.")] = False,
) -> None:
    """Write the event contract's JSON Schema files (generated from the pydantic models)."""
    from streamwatch.cli.schemas import stale_schemas, write_schemas

    if check:
        stale = stale_schemas(out)
        if stale:
            raise StreamwatchError(f"schemas in {out} are stale: {', '.join(stale)}; run `streamwatch schemas`")
        typer.echo(f"schemas in {out} are up to date")
        return
    for path in write_schemas(out):
        typer.echo(f"wrote {path}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files of events, or - for stdin.")],
) -> None:
    """Check events (one JSON object per line) against the contract."""
    from streamwatch.contract.events import parse_event

    bad = total = 0
    for path in files:
        stream = sys.stdin.buffer if str(path) == "-" else _open(path)
        with stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                total += 1
                try:
                    parse_event(line.rstrip(b"\r\n"), any_type=True)
                except ContractError as exc:
                    bad += 1
                    typer.echo(f"{path}:{number}: {exc}", err=True)
    typer.echo(f"{total - bad} valid, {bad} invalid")
    if bad:
        raise typer.Exit(1)


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise StreamwatchError(f"{path}: cannot be read ({exc.strerror})") from None


@app.command()
def profile(
    data: Annotated[Path, typer.Argument(help="Training data: a .csv or .parquet file.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version the data trained.")],
    out: Annotated[Path, typer.Option(help="Where to write the profile (JSON).")],
    label_column: Annotated[str | None, typer.Option(help="Ground-truth column.")] = None,
    score_column: Annotated[str | None, typer.Option(help="Score (probability) column.")] = None,
    prediction_column: Annotated[str | None, typer.Option(help="Prediction column.")] = None,
    segments: Annotated[str, typer.Option(help="Comma-separated slice columns, e.g. gender,region.")] = "",
    positive_label: Annotated[str, typer.Option(help="Label value counted as positive.")] = "1",
    task: Annotated[
        str | None,
        typer.Option(
            help="binary_classification, multiclass_classification or regression (default: inferred from the label)."
        ),
    ] = None,
    max_categories: Annotated[int, typer.Option(min=1, help="Categories kept per categorical feature.")] = 200,
    data_uri: Annotated[str | None, typer.Option(help="Where the data lives, for lineage (default: DATA).")] = None,
    model_artifact: Annotated[str | None, typer.Option(help="Model artifact URI, for lineage.")] = None,
    git_sha: Annotated[str | None, typer.Option(help="Git commit of the training code, for lineage.")] = None,
    embedding: Annotated[
        list[str] | None,
        typer.Option(
            help="An embedding from a .npy file of one vector per row of DATA, as NAME=PATH (repeatable). "
            "A Parquet file's list columns are embeddings already."
        ),
    ] = None,
) -> None:
    """Build a reference profile of a training set: bins, frequencies, distributions, slices and lineage."""
    from datetime import UTC, datetime

    from streamwatch.adapters.datasets import read_embeddings, sha256_of
    from streamwatch.profiles.model import Lineage, build_profile

    files = {}
    for given in embedding or []:
        name, sep, path = given.partition("=")
        if not sep or not name or not path:
            raise StreamwatchError(f"--embedding {given!r}: expected NAME=PATH, e.g. text=train.text.npy")
        files[name] = Path(path)
    columns, vectors, rows = read_embeddings(data, files)
    try:
        lineage = Lineage(
            model=model,
            model_version=version,
            data_uri=data_uri or str(data),
            rows=rows,
            content_sha256=sha256_of(data),
            model_artifact_uri=model_artifact,
            git_sha=git_sha,
            created_at=datetime.now(UTC),
            streamwatch_version=__version__,
        )
        built = build_profile(
            columns,
            lineage=lineage,
            label_column=label_column,
            score_column=score_column,
            prediction_column=prediction_column,
            segments=[s for s in segments.split(",") if s],
            positive_label=positive_label,
            max_categories=max_categories,
            task=task,
            embeddings=vectors,
        )
    except KeyError as exc:
        raise StreamwatchError(f"{data}: {exc.args[0]}") from None
    except ValueError as exc:
        raise StreamwatchError(f"{data}: {str(exc).splitlines()[0]}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(built.model_dump_json(indent=2) + "\n", encoding="utf-8")
    calibrated = ", score calibrated for estimated performance" if built.calibration else ""
    embedded = "".join(f", embedding {name} ({e.dims} dims)" for name, e in built.embeddings.items())
    typer.echo(
        f"wrote {out}: {built.task or 'no label, task not stated'}, {len(built.features)} features, {rows} rows, "
        f"{len(built.slices)} slices{calibrated}{embedded}"
    )
