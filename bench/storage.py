"""What the raw events and the metrics take in ClickHouse, per event and per day, and what the columnar layout costs.

One run on embedded ClickHouse (chdb, on disk in a temporary directory), with
bench/core.py's events: predictions with 20 features (15 numeric, 5
categorical of 6 levels), 2 segments, a latency and a score, and labels for
half of the requests; and the one-minute metric rows the pipeline computes
from them (slices by gender and by region, the 60-minute rolling view).

- Bytes per event on disk (``system.parts``, after merging) of ``predictions``,
  ``labels`` and ``metrics``, in today's schema (features stored columnar in
  ``feature_map``, schema version 3, with its codecs) and in the schema before it
  (features as JSON text, default LZ4), both written by the worker's own code.
- Insert throughput of the two layouts side by side, batches of 5,000 taking
  turns so that a busy machine slows both alike: building the insert columns in
  Python plus the insert itself.
- The feature object alone in four layouts: JSON text; JSON text split into
  ``feature_map`` by ClickHouse (the chosen one); and two built in Python and
  serialised by clickhouse-connect, a Map of Variants and typed parallel arrays.
- Codecs tried per column.
- Rows and bytes per day at 10k, 100k and 1M events/s, with ``raw_events: all``
  and ``sample`` at 1%.

    .venv/bin/python bench/storage.py            # 200,000 predictions, about a minute
    .venv/bin/python bench/storage.py --quick    # 20,000, a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from core import make_events, reference_profile
from streamwatch.adapters.clickhouse import Source, Store, connect, migrations_directory, rows
from streamwatch.config.settings import ClickHouseSettings
from streamwatch.contract.decode import decode_batch
from streamwatch.pipeline.pipeline import Pipeline

BATCH = 5_000  # the worker's default batch size
RATES = (10_000, 100_000, 1_000_000)
SAMPLE = 0.01
DAY_S = 86_400
#: Parts as a production table has them: in the wide format (a file per column), which the small parts of
#: a short run would otherwise not be (ClickHouse keeps parts under 10 MB compact, sizes not per column).
WIDE = "SETTINGS min_bytes_for_wide_part = 0"
ENGINE = "ENGINE = MergeTree"


def old_columns(columns: rows.Columns) -> rows.Columns:
    """The same insert as before schema version 3: the feature object into the stored ``features`` text."""
    names, values = columns
    return ["features" if n == "features_json" else n for n in names], values


def part_bytes(store: Store, table: str) -> tuple[int, int, int]:
    """(rows, compressed data bytes, bytes on disk) of a table's active parts, after merging them."""
    store.command(f"OPTIMIZE TABLE {store.database}.{table} FINAL")
    [(n, compressed, disk)] = store.query(
        "SELECT sum(rows), sum(data_compressed_bytes), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = {d:String} AND table = {t:String} AND active",
        {"d": store.database, "t": table},
    )
    return int(n), int(compressed), int(disk)


def column_bytes(store: Store, table: str) -> dict[str, int]:
    return dict(_column_sizes(store.client, store.database, table))


def _column_sizes(client: Any, database: str, table: str) -> list[tuple[str, int]]:
    """Compressed bytes of each column of a table's active parts."""
    found = client.query(
        "SELECT column, sum(column_data_compressed_bytes) FROM system.parts_columns "
        "WHERE database = {d:String} AND table = {t:String} AND active GROUP BY column",
        parameters={"d": database, "t": table},
    ).result_rows
    return [(name, int(size)) for name, size in found]


def timed_batches(writes: dict[str, Callable[[int, int], None]], n: int) -> dict[str, float]:
    """Seconds each writer spends on all ``n`` events, in batches, the writers taking turns batch by batch."""
    spent = dict.fromkeys(writes, 0.0)
    for start in range(0, n, BATCH):
        for name, write in writes.items():
            began = time.perf_counter()
            write(start, min(n, start + BATCH))
            spent[name] += time.perf_counter() - began
    return spent


def metric_rows(raws: list[bytes]) -> tuple[list[Any], float]:
    """The metric rows the pipeline writes for these events, and the minutes of event time they cover."""
    pipeline = Pipeline(
        {("credit", "3"): reference_profile()},
        slices={"credit": [["gender"], ["region"]]},
        performance_view_ms=1_800_000,
    )
    out = []
    for start in range(0, len(raws), 1_000):
        out += pipeline.process(raws[start : start + 1_000]).rows
    out += pipeline.flush().rows
    minutes = len({r.window_start_ms for r in out if r.window == "tumbling"})
    return out, minutes


def features_layouts(client: Any, database: str, events: Sequence[Any]) -> list[tuple[str, float, float]]:
    """The feature object alone in four layouts: (layout, µs per event to build and insert, bytes per event)."""
    variant = "Variant(Bool, Float64, Int64, String)"
    layouts: dict[str, tuple[str, list[str], Callable[[Sequence[Any]], list[list[Any]]]]] = {
        "JSON text, LZ4 (before)": (
            "features String",
            ["features"],
            lambda es: [[orjson.dumps(e.features).decode() for e in es]],
        ),
        "JSON text, ZSTD(1)": (
            "features String CODEC(ZSTD(1))",
            ["features"],
            lambda es: [[orjson.dumps(e.features).decode() for e in es]],
        ),
        "JSON text split by ClickHouse (chosen)": (
            "features_json String EPHEMERAL, feature_map Map(LowCardinality(String), String) DEFAULT "
            "CAST(JSONExtractKeysAndValuesRaw(features_json), 'Map(LowCardinality(String), String)') CODEC(ZSTD(1))",
            ["features_json"],
            lambda es: [[orjson.dumps(e.features).decode() for e in es]],
        ),
        "Map of Variants built in Python": (
            f"feature_map Map(LowCardinality(String), {variant}) CODEC(ZSTD(1))",
            ["feature_map"],
            lambda es: [[e.features for e in es]],
        ),
        "typed parallel arrays built in Python": (
            "feature_names Array(LowCardinality(String)) CODEC(ZSTD(1)), "
            "feature_numbers Array(Nullable(Float64)) CODEC(ZSTD(1)), "
            "feature_strings Array(Nullable(String)) CODEC(ZSTD(1))",
            ["feature_names", "feature_numbers", "feature_strings"],
            typed_arrays,
        ),
    }
    ids = [e.event_id for e in events]
    writes = {}
    for n, (name, (ddl, names, build)) in enumerate(layouts.items()):
        table = f"{database}.layout_{n}"
        client.command(
            f"CREATE TABLE {table} (event_id String CODEC(ZSTD(1)), {ddl}) ENGINE = MergeTree ORDER BY event_id {WIDE}"
        )

        def write(start: int, end: int, table: str = table, names: list[str] = names, build: Any = build) -> None:
            columns = [ids[start:end], *build(events[start:end])]
            client.insert(table, columns, column_names=["event_id", *names], column_oriented=True)

        writes[name] = write
    spent = timed_batches(writes, len(events))
    out = []
    for n, name in enumerate(layouts):
        client.command(f"OPTIMIZE TABLE {database}.layout_{n} FINAL")
        size = sum(b for column, b in _column_sizes(client, database, f"layout_{n}") if column != "event_id")
        out.append((name, spent[name] / len(events) * 1e6, size / len(events)))
    return out


def typed_arrays(events: Sequence[Any]) -> list[list[Any]]:
    names, numbers, strings = [], [], []
    for e in events:
        values = e.features.values()
        names.append(list(e.features))
        numbers.append([None if type(v) is str or v is None else float(v) for v in values])
        strings.append([v if type(v) is str else None for v in values])
    return [names, numbers, strings]


#: Codecs tried per column of the raw tables (the first of each is ClickHouse's default, LZ4).
CODECS = {
    "timestamp DateTime64(3, 'UTC')": ["LZ4", "ZSTD(1)", "Delta, ZSTD(1)", "DoubleDelta, ZSTD(1)"],
    "latency_ms Float64": ["LZ4", "ZSTD(1)", "Gorilla, ZSTD(1)", "FPC, ZSTD(1)"],
    "score Nullable(Float64)": ["LZ4", "ZSTD(1)", "Gorilla, ZSTD(1)"],
    "event_id String": ["LZ4", "ZSTD(1)", "ZSTD(3)"],
    "offset Int64": ["LZ4", "ZSTD(1)", "Delta, ZSTD(1)", "T64, ZSTD(1)"],
    "feature_map Map(LowCardinality(String), String)": ["LZ4", "ZSTD(1)", "ZSTD(3)"],
}


def codec_sweep(client: Any, database: str, events: Sequence[Any]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Bytes per event of each column under each codec, the rows sorted as ``predictions`` sorts them."""
    values = {
        "timestamp": [e.timestamp for e in events],
        "latency_ms": [e.latency_ms for e in events],
        "score": [e.score for e in events],
        "event_id": [e.event_id for e in events],
        "offset": list(range(1_000, 1_000 + len(events))),
        "feature_map": [{k: orjson.dumps(v).decode() for k, v in e.features.items()} for e in events],
    }
    width = max(len(c) for c in CODECS.values())
    for n in range(width):
        ddl = ", ".join(f"{column} CODEC({codecs[min(n, len(codecs) - 1)]})" for column, codecs in CODECS.items())
        client.command(
            f"CREATE TABLE {database}.codecs_{n} ({ddl}) ENGINE = MergeTree ORDER BY (timestamp, event_id) {WIDE}"
        )
        for start in range(0, len(events), BATCH):
            client.insert(
                f"{database}.codecs_{n}",
                [v[start : start + BATCH] for v in values.values()],
                column_names=list(values),
                column_oriented=True,
            )
        client.command(f"OPTIMIZE TABLE {database}.codecs_{n} FINAL")
    sizes: dict[tuple[str, int], int] = {}
    for n in range(width):
        sizes.update({(name, n): size for name, size in _column_sizes(client, database, f"codecs_{n}")})
    return [
        (column, [(codec, sizes[column.split()[0], n] / len(events)) for n, codec in enumerate(codecs)])
        for column, codecs in CODECS.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="predictions (plus labels for half)")
    parser.add_argument("--quick", action="store_true", help="20,000 predictions: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events = 20_000
    directory = Path(tempfile.mkdtemp(prefix="streamwatch-storage-bench-"))
    try:
        run(args.events, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(n_events: int, directory: Path) -> None:
    started = time.perf_counter()
    raws = make_events(n_events, start_ms=1_795_000_000_000)
    batch = decode_batch(raws)
    predictions, labels = batch.predictions, batch.labels
    assert not batch.dead_letters
    metrics, minutes = metric_rows(raws)
    generated = time.perf_counter() - started

    new = connect(ClickHouseSettings(dsn=f"chdb://{directory}", database="after"))
    new.migrate(raw_ttl_days=0)  # no TTL: the events are dated November 2026, whenever this runs
    old = Store(new.client, "before")
    before = directory / "before-v3"
    before.mkdir()
    for path in sorted(migrations_directory().glob("*.sql")):
        if int(path.name[:4]) < 3:
            shutil.copy(path, before)
    old.migrate(raw_ttl_days=0, directory=before)
    for store in (old, new):
        for table in ("predictions", "labels", "metrics"):
            store.command(f"ALTER TABLE {store.database}.{table} MODIFY SETTING min_bytes_for_wide_part = 0")

    p_sources = [Source("streamwatch.predictions", i % 12, i) for i in range(len(predictions))]
    l_sources = [Source("streamwatch.labels", i % 12, i) for i in range(len(labels))]

    def writer(store: Store, legacy: bool) -> Callable[[int, int], None]:
        def write(start: int, end: int) -> None:
            # The labels of these predictions: labels are half as many, and come with their predictions.
            ls, le = start // 2, end // 2
            for table, columns in (
                ("predictions", rows.prediction_columns(predictions[start:end], p_sources[start:end])),
                ("labels", rows.label_columns(labels[ls:le], l_sources[ls:le])),
            ):
                store.insert(table, *(old_columns(columns) if legacy else columns))

        return write

    spent = timed_batches({"before": writer(old, True), "after": writer(new, False)}, len(predictions))
    new.insert_metrics(metrics, version=1)
    old.insert_metrics(metrics, version=1)

    sizes = {
        (name, table): part_bytes(store, table)
        for name, store in (("before", old), ("after", new))
        for table in ("predictions", "labels", "metrics")
    }
    for (name, table), (n, _, _) in sizes.items():
        expected = {"predictions": len(predictions), "labels": len(labels), "metrics": len(metrics)}[table]
        assert n == expected, f"{name}.{table}: {n} rows stored, {expected} written"
    back = new.raw_features("predictions")
    assert [r.features for r in back[:50]] == [p.features for p in predictions[:50]], "feature_map lost something"

    events = len(predictions) + len(labels)
    size = sum(map(len, raws)) // len(raws)
    print(
        f"\n{len(predictions):,} predictions (20 features: 15 numeric, 5 categorical; 2 segments) and "
        f"{len(labels):,} labels, ~{size} bytes each as JSON; {len(metrics):,} metric rows over {minutes:.0f} "
        f"one-minute windows; made in {generated:.0f} s\n"
    )

    print("On disk, after merging (system.parts: compressed data; all of a part's files)")
    print(f"{'table':14}{'layout':34}{'rows':>10}{'data B/row':>12}{'disk B/row':>12}")
    for table in ("predictions", "labels", "metrics"):
        layouts = (("before", "JSON text (schema v2)"), ("after", "columnar + codecs (schema v3)"))
        for name, label in layouts if table != "metrics" else (("after", "unchanged"),):
            n, compressed, disk = sizes[name, table]
            print(f"{table:14}{label:34}{n:>10,}{compressed / n:>12.1f}{disk / n:>12.1f}")
    cols_old, cols_new = column_bytes(old, "predictions"), column_bytes(new, "predictions")
    print(
        f"  features alone: {cols_old['features'] / len(predictions):.1f} B/prediction as JSON text, "
        f"{cols_new['feature_map'] / len(predictions):.1f} in feature_map"
    )

    print(f"\nInsert throughput, batches of {BATCH:,} taking turns (build the columns in Python + insert)")
    print(f"{'layout':34}{'µs/event':>10}{'events/s':>12}")
    for name, label in (("before", "JSON text (schema v2)"), ("after", "columnar + codecs (schema v3)")):
        micros = spent[name] / events * 1e6
        print(f"{label:34}{micros:>10.2f}{1e6 / micros:>12,.0f}")
    print(f"ratio columnar / JSON text: {spent['after'] / spent['before']:.2f}x the time")

    subset = predictions[: min(len(predictions), 50_000)]
    print(f"\nThe feature object alone, {len(subset):,} predictions (build + insert, then bytes after merging)")
    print(f"{'layout':42}{'µs/event':>10}{'events/s':>12}{'B/event':>10}")
    for name, micros, per_event in features_layouts(new.client, new.database, subset):
        print(f"{name:42}{micros:>10.2f}{1e6 / micros:>12,.0f}{per_event:>10.1f}")

    print(f"\nCodecs per column, bytes per event ({len(subset):,} predictions, sorted by time)")
    for column, results in codec_sweep(new.client, new.database, subset):
        best = min(b for _, b in results)
        cells = "  ".join(f"{codec}: {b:.2f}{'*' if b == best else ''}" for codec, b in results)
        print(f"  {column.split()[0]:12} {cells}")

    # An event is a message the worker consumes: a prediction or a label, in this run's mix.
    label_share = len(labels) / len(predictions)
    per_event = {
        name: (sizes[name, "predictions"][2] + sizes[name, "labels"][2]) / (len(predictions) + len(labels))
        for name in ("before", "after")
    }
    metric_rows_per_day = len(metrics) / minutes * 1_440
    metric_bytes_per_day = sizes["after", "metrics"][2] / len(metrics) * metric_rows_per_day
    print(
        f"\nPer day: an event is a prediction or a label ({label_share:.1f} labels per prediction), "
        f"{per_event['after']:.1f} B on disk each in the columnar layout, {per_event['before']:.1f} B as JSON text; "
        "a sample keeps as many bytes per row. Metric rows: one model, as computed above; they depend on the "
        "models, features and slices, not on the event rate."
    )
    print(
        f"{'events/s':>10}{'raw_events':>12}{'raw rows/day':>17}{'raw GB/day':>12}{'(JSON text)':>13}"
        f"{'metric rows/day':>17}{'metrics MB/day':>16}"
    )
    for rate in RATES:
        for mode, share in (("all", 1.0), (f"sample {SAMPLE:.0%}", SAMPLE)):
            raw_rows = rate * DAY_S * share
            print(
                f"{rate:>10,}{mode:>12}{raw_rows:>17,.0f}{raw_rows * per_event['after'] / 1e9:>12,.1f}"
                f"{raw_rows * per_event['before'] / 1e9:>13,.1f}{metric_rows_per_day:>17,.0f}"
                f"{metric_bytes_per_day / 1e6:>16,.1f}"
            )
    print(f"\ndone in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
