"""The demo scenario in ClickHouse, once for the dashboard tests: every panel's SQL runs on it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.prometheus import WorkerMetrics
from tests.dashboards.demo_rows import performance_rows
from tests.report.test_html import SCENARIO, load_demo


@pytest.fixture(scope="session")
def loaded(chdb_client: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int, int]:
    """A store holding the demo scenario, its performance rows (:func:`performance_rows`) and three samples of
    worker metrics; its start and end in ms."""
    store = Store(chdb_client, f"dash_{uuid4().hex[:8]}")
    store.migrate(raw_ttl_days=0)
    load_demo(store, tmp_path_factory.mktemp("demo"))
    store.insert_metrics(performance_rows(store), version=0)
    start = SCENARIO.start_ms
    metrics = WorkerMetrics()
    for i in range(3):  # what a worker records every 10 s: counters that grow
        metrics.events.labels("streamwatch.predictions").inc(1000)
        metrics.dead_letters.inc(2)
        metrics.late_events.inc(1)
        metrics.inserted(0.01)
        metrics.lag({("streamwatch.predictions", 0): 10 * i})
        metrics.delivered("hook")
        store.insert_worker_metrics("worker-1", start + 60_000 * (i + 1), metrics.samples())
    return store, start, start + SCENARIO.minutes * 60_000
