"""`streamwatch init` and `streamwatch worker` as real processes: SIGKILLed at random points, still exact."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streamwatch.adapters.localbroker import LocalKafka, free_port
from streamwatch.config.settings import load_settings
from streamwatch.pipeline.from_settings import configured_profiles, pipeline_from_settings
from tests.pipeline.test_merge import PROFILE, final_state, same, stream
from tests.runtime.test_loop import BAD, Setup

pytestmark = pytest.mark.kafka
RAWS = stream(minutes=6, per_minute=400)

CONFIG = """
models:
  - name: credit
    references: {{"3": ref.json}}
    versions: any  # the canary, version 4, has no reference of its own
    segments: [gender]
  - name: clock  # the heartbeats that close the last windows (any version: it lists no reference)
windows: {{rolling_windows: 3}}
worker: {{group: {group}, instance_id: w1, batch_size: 50, checkpoint_interval_ms: 300,
         idle_timeout_ms: 2000, web_port: {port}, max_age_ms: 315360000000}}
topics: {{predictions: {p}, features: {f}, labels: {l}, deadletter: {d}, partitions: 3}}
kafka: {{bootstrap_servers: "{bootstrap}", librdkafka: {{"client.rack": "rack-secret-x1"}}}}
clickhouse: {{dsn: "chdb://{data}", raw_ttl_days: 0, password: "hunter2-pw"}}
"""

DUMP = """
import sys, orjson
from streamwatch.adapters.clickhouse import connect
from streamwatch.config.settings import load_settings
store = connect(load_settings(sys.argv[1]).clickhouse)
rows = [r.export() | {"segment": r.segment, "value": r.value, "lower": r.lower, "upper": r.upper,
        "threshold": r.threshold, "window_start": r.window_start_ms} for r in store.metrics("credit")]
print(orjson.dumps({"rows": rows, "dead": [d.raw.hex() for d in store.dead_letters()]}).decode())
"""


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamwatch", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def consumed(port: int) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(v) for v in re.findall(r"^streamwatch_events_total\{[^}]*\} (\S+)$", text, re.M))


def expected(config: Path) -> dict[Any, Any]:
    """What the pipeline the config describes reports on the whole stream, uninterrupted."""
    settings = load_settings(config)
    pipeline = pipeline_from_settings(settings, configured_profiles(settings))
    rows, _ = final_state([pipeline.process(RAWS), pipeline.flush()])
    return {k: v for k, v in rows.items() if k[0] == "credit"}


def test_a_worker_killed_at_random_points_and_restarted_ends_exactly_like_an_uninterrupted_run(
    broker: LocalKafka, tmp_path: Path
) -> None:
    setup = Setup(broker)
    t = setup.rts
    port = free_port()
    (tmp_path / "ref.json").write_text(PROFILE.model_dump_json())
    config = tmp_path / "streamwatch.yaml"
    config.write_text(
        CONFIG.format(
            group=t.group,
            port=port,
            p=t.predictions,
            f=t.features,
            l=t.labels,
            d=t.deadletter,
            bootstrap=broker.bootstrap_servers,
            data=tmp_path / "clickhouse",
        )
    )
    init = cli("init", config=config)
    assert init.returncode == 0, init.stderr
    published = setup.publish(RAWS, BAD)
    rng = random.Random(20261124)
    log = tmp_path / "worker.log"
    kills = 0
    for _ in range(3):
        worker = subprocess.Popen(
            [sys.executable, "-m", "streamwatch", "worker", "--config", str(config)],
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
        )
        # Kill once this incarnation has consumed a random share of the stream, mid-batch or not.
        threshold = rng.randint(100, published // 3)
        deadline = time.monotonic() + 60
        while consumed(port) < threshold and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        kills += 1
    worker = subprocess.Popen(
        [sys.executable, "-m", "streamwatch", "worker", "--config", str(config), "--log-format", "json"],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    try:
        # Uninterrupted from here: wait until it has read everything and then gone idle.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if committed_lag(setup) == 0:
                break
            time.sleep(0.2)
        time.sleep(6)  # idle timeout twice, and a report
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert kills == 3
    dump = subprocess.run([sys.executable, "-c", DUMP, str(config)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    result = json.loads(dump.stdout)
    rows = {
        (
            r["model"],
            r["model_version"],
            r["variant"],
            r["window"],
            r["window_start"],
            r["metric"],
            r["feature"],
            tuple(tuple(p) for p in r["segment"]),
        ): (r["value"], r["lower"], r["upper"], r["threshold"])
        for r in result["rows"]
    }
    same(rows, expected(config))
    assert sorted(bytes.fromhex(h) for h in result["dead"]) == sorted(BAD)
    text = log.read_text()
    structured = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    reports = [e for e in structured if e.get("model") == "credit" and "window_start" in e]
    assert reports and {"time", "level", "logger", "message", "model_version", "variant"} <= reports[0].keys()
    assert "Traceback" not in text
    assert "rack-secret-x1" not in text and "hunter2-pw" not in text  # secrets never reach the logs


def committed_lag(setup: Setup) -> int:
    from streamwatch.adapters.kafka import committed_lag as lag

    return lag(setup.settings.kafka, setup.rts.group, setup.rts.inputs)


def test_init_is_idempotent_and_a_bad_setting_is_one_line(broker: LocalKafka, tmp_path: Path) -> None:
    config = tmp_path / "streamwatch.yaml"
    config.write_text(
        f'kafka: {{bootstrap_servers: "{broker.bootstrap_servers}"}}\n'
        f'clickhouse: {{dsn: "chdb://{tmp_path / "ch"}"}}\ntopics: {{predictions: init.p, features: init.f, '
        "labels: init.l, alerts: init.a, retrain: init.r, deadletter: init.d}\n"
    )
    first = cli("init", config=config)
    assert first.returncode == 0 and "0001_init.sql" in first.stdout and "init.p" in first.stdout, first.stderr
    again = cli("init", config=config)
    assert again.returncode == 0 and "none (up to date)" in again.stdout and "none (all exist)" in again.stdout
    config.write_text(config.read_text() + "worker: {batch_size: 0}\n")
    bad = cli("worker", config=config)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "worker.batch_size" in bad.stderr
    os.environ.pop("STREAMWATCH_CONFIG_FILE", None)
