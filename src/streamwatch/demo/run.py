"""``streamwatch demo``: the whole path on a bare machine, on a realistic incident scenario, in about two minutes.

It starts a local Kafka-protocol broker (noida-db) and uses embedded
ClickHouse (chdb), so nothing has to be installed. Then:

1. a simulated credit-risk service (:mod:`streamwatch.demo.scenario`: two
   versions, a canary, labels 20 to 100 s late, three injected incidents)
   publishes through the SDK at compressed event time;
2. a real ``streamwatch worker`` process (Faust, the batch runtime,
   ClickHouse, the rules with their built-in defaults) monitors it and sends
   notifications to a signed webhook served here, and retrain events that the
   example consumer (``examples/retrain_consumer.py``) picks up;
3. a live view shows progress, incidents and alerts as they fire and resolve;
4. once the worker has stopped, ClickHouse is read for an HTML report and a
   summary of what was detected, and when, against what was injected.

:func:`publish_scenario` is also what ``streamwatch traffic`` runs against
any Kafka (the docker-compose traffic generator).
"""

from __future__ import annotations

import http.server
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from streamwatch.adapters.http import get
from streamwatch.adapters.kafka import create_topics
from streamwatch.adapters.localbroker import LocalKafka, LocalProcess, free_port
from streamwatch.clock import now_ms, now_s
from streamwatch.config.settings import Settings, load_settings
from streamwatch.demo.scenario import MODEL, DemoScenario, Incident
from streamwatch.demo.view import DemoProgress
from streamwatch.notify.payloads import verify_webhook
from streamwatch.sdk.producer import Producer
from streamwatch.times import parse_rfc3339, to_ms

__all__ = ["DemoSummary", "publish_scenario", "run_demo"]

_SECRET = "demo-webhook-secret"


class _Receiver(http.server.ThreadingHTTPServer):
    """The demo's webhook endpoint: keeps each notification whose signature verifies."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.notifications: list[dict[str, Any]] = []
        self.rejected = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/streamwatch"


class _Hook(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        stamp, signature = (
            self.headers.get("X-Streamwatch-Timestamp", ""),
            self.headers.get("X-Streamwatch-Signature", ""),
        )
        if verify_webhook(_SECRET, body, stamp, signature, now_s()):
            self.server.notifications.append(orjson.loads(body))
            self.send_response(200)
        else:
            self.server.rejected += 1
            self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def publish_scenario(
    settings: Settings,
    scenario: DemoScenario,
    speed: float,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Publish the scenario through the SDK, event time running ``speed`` times faster than the clock.

    ``progress(events, event_time_ms)`` is called every second of event time. Returns the events published.
    """
    started = time.monotonic()
    sent = 0
    with Producer(settings=settings, model=MODEL, strict=True) as monitor:
        for event in scenario.events():
            if stop is not None and stop.is_set():
                break
            due = started + (event["timestamp"] - scenario.start_ms) / 1000 / speed
            if due - time.monotonic() > 0.005:
                time.sleep(due - time.monotonic())
                if progress is not None:
                    progress(sent, event["timestamp"])
            fields = {k: v for k, v in event.items() if k not in ("type", "schema_version")}  # (the SDK sets it)
            if event["type"] == "prediction":
                monitor.log_prediction(**fields)
            else:
                monitor.log_label(**fields)
            sent += 1
        monitor.flush(30)
    return sent


@dataclass
class Detection:
    incident: Incident
    rule: str | None = None
    minute: int | None = None  # event-time minute of the window that fired

    @property
    def delay(self) -> int | None:
        return None if self.minute is None else self.minute - self.incident.start


@dataclass
class DemoSummary:
    events: int
    detections: list[Detection]
    notifications: list[dict[str, Any]]
    retrain_requests: list[dict[str, Any]]
    report: Path | None
    seconds: float
    rejected_notifications: int = 0
    false_alarms: list[str] = field(default_factory=list)
    #: Production's accuracy for gender=F per minute: (minute, estimated, lower, upper, realized or None).
    estimates: list[tuple[int, float, float, float, float | None]] = field(default_factory=list)

    @property
    def outside_incidents(self) -> int:
        """Alerts that fired outside every incident (and the minutes its effects last): false alerts."""
        return sum(label.endswith("(outside every incident)") for label in self.false_alarms)

    @property
    def ok(self) -> bool:
        return all(d.rule is not None for d in self.detections) and self.rejected_notifications == 0


def _config(settings_dir: Path, bootstrap: str, receiver: _Receiver, references: list[Path]) -> Path:
    config = {
        "kafka": {"bootstrap_servers": bootstrap},
        "clickhouse": {"dsn": f"chdb://{settings_dir / 'clickhouse'}", "raw_ttl_days": 0},
        "topics": {"partitions": 3},
        "windows": {"size_ms": 60_000, "allowed_lateness_ms": 5_000, "rolling_windows": 10},
        "worker": {
            "group": "demo",
            "instance_id": "demo-worker-1",
            "report_interval_ms": 500,
            "idle_timeout_ms": 3_000,
            "checkpoint_interval_ms": 2_000,
        },
        "models": [
            {
                "name": MODEL,
                "segments": ["gender", "region"],
                "references": {},
                "slo": {"latency_ms": 300, "target": 0.99},
            }
        ],
        # The built-in drift rule, plus a retrain request for the training job the demo runs.
        "rules": [
            {"name": "feature-drift", "kind": "drift", "when": {"finding": "drift"}, "for": 2, "actions": ["retrain"]}
        ],
        "channels": [{"name": "demo-webhook", "type": "webhook", "url": receiver.url, "signing_secret": _SECRET}],
        "alerting": {
            "group_wait": "0s",
            "group_interval": "0s",
            "repeat_interval": "1h",
            "retrain": {"cooldown": "30m", "min_data": "1d"},
        },
    }
    path = settings_dir / "streamwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M))


def _last_minute(alert: dict[str, Any], scenario: DemoScenario) -> int:
    """The minute of the last window an alert judged: a tumbling window's own, a performance view's
    newest (a view spans the minutes before it too)."""
    return (to_ms(parse_rfc3339(alert["window"]["end"])) - scenario.start_ms) // 60_000 - 1


def _detections(scenario: DemoScenario, alerts: list[dict[str, Any]]) -> tuple[list[Detection], list[str]]:
    """The first firing alert that matches each incident (kind, variant, and feature or slice)."""
    out = []
    matched: set[str] = set()
    for incident in scenario.incidents:
        detection = Detection(incident)
        for alert in sorted(alerts, key=lambda a: a["window"]["end"]):
            minute = _last_minute(alert, scenario)
            where = alert.get("feature") or ",".join(f"{k}={v}" for k, v in (alert.get("segment") or {}).items())
            # A drift is caught by the drift rules or, often a window earlier, by the river change detector.
            kinds = {incident.kind, "change"} if incident.kind == "drift" else {incident.kind}
            fits = alert["kind"] in kinds and alert["variant"] == incident.variant
            fits = fits and (incident.kind == "slo" or where == incident.detail)
            if fits and alert["status"] == "firing" and minute >= incident.start - 1:
                detection.rule, detection.minute = alert["rule"], minute
                matched.add(alert["fingerprint"])
                break
        out.append(detection)
    others = set()
    for a in alerts:
        if a["status"] != "firing" or a["fingerprint"] in matched:
            continue
        first, last = (
            (to_ms(parse_rfc3339(a["window"]["start"])) - scenario.start_ms) // 60_000,
            _last_minute(a, scenario),
        )
        # An incident's effects outlast it a little: labels come late and burn-rate windows are long; a
        # performance view that spans an incident's minutes sees it.
        during = any(first <= i.end + 2 and last >= i.start for i in scenario.incidents)
        label = f"{a['rule']} {a['variant']} {a.get('feature') or ''}".strip()
        others.add(label if during else f"{label} (outside every incident)")
    return out, sorted(others)


def run_demo(
    minutes: int = 30,
    per_minute: int = 400,
    speed: float = 30.0,
    workdir: Path = Path("streamwatch-data/demo"),
    view: Any = None,
) -> DemoSummary:
    """Run the demo; ``view(progress)`` (optional) is called a few times a second with a :class:`DemoProgress`."""
    began = time.monotonic()
    workdir = workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "profiles").mkdir(parents=True)
    started_ms = now_ms()
    scenario = DemoScenario(minutes, per_minute, start_ms=started_ms - minutes * 60_000)
    references = []
    for (_, version), profile in scenario.reference_profiles().items():
        path = workdir / "profiles" / f"{MODEL}-{version}.json"
        path.write_text(profile.model_dump_json())
        references.append(path)
    receiver = _Receiver()
    state = DemoProgress(scenario, notifications=receiver.notifications, event_ms=scenario.start_ms)
    processes: list[LocalProcess] = []
    with LocalKafka() as broker:
        config = _config(workdir, broker.bootstrap_servers, receiver, references)
        settings = load_settings(config)
        t = settings.topics
        create_topics(settings.kafka, [t.predictions, t.features, t.labels], partitions=3)
        create_topics(settings.kafka, [t.alerts, t.retrain, t.deadletter, t.control, t.notifications], partitions=1)
        create_topics(settings.kafka, [t.silences], partitions=1, config={"cleanup.policy": "compact"})
        port = free_port()
        worker_cmd = [
            sys.executable,
            "-m",
            "streamwatch",
            "worker",
            "--config",
            str(config),
            "--web-port",
            str(port),
            "--log-format",
            "json",
            *[a for r in references for a in ("--reference", str(r))],
        ]
        processes.append(LocalProcess(worker_cmd, workdir / "worker.log"))
        # The retrain consumer ships inside the package (examples/retrain_consumer.py links to it),
        # so the demo finds it in a wheel install too.
        retrain_out = workdir / "retrain-consumer.jsonl"
        consumer = [
            sys.executable,
            "-m",
            "streamwatch.demo.retrain_consumer",
            "--bootstrap",
            broker.bootstrap_servers,
            "--topic",
            t.retrain,
            "--group",
            "demo-training-job",
        ]
        processes.append(LocalProcess(consumer, retrain_out))
        try:
            _wait_healthy(port, processes[0], state, view)
            state.phase = "serving traffic"

            def progress(events: int, event_ms: int) -> None:
                state.events, state.event_ms = events, event_ms

            def publish() -> None:
                state.events = publish_scenario(settings, scenario, speed, progress=progress)
                state.published = True

            publisher = threading.Thread(target=publish, daemon=True)
            publisher.start()
            while publisher.is_alive():
                _poll(port, state, view)
                publisher.join(0.25)
            state.phase = "closing the last windows"
            _close_windows(settings, scenario)
            _settle(port, state, view, expected=state.events + 3)
        finally:
            for process in processes:
                process.stop(30.0)
    receiver.shutdown()
    state.phase = "writing the report"
    if view is not None:
        view(state)
    report = _write_report(settings, scenario, workdir)
    estimates = _estimates(settings, scenario)
    alerts = [a for n in receiver.notifications for a in n["alerts"]]
    detections, others = _detections(scenario, alerts)
    lines = retrain_out.read_bytes().splitlines() if retrain_out.exists() else []
    retrain = [orjson.loads(line) for line in lines if line.startswith(b"{")]  # stderr shares the file
    return DemoSummary(
        state.events,
        detections,
        receiver.notifications,
        retrain,
        report,
        time.monotonic() - began,
        receiver.rejected,
        others,
        estimates,
    )


def _wait_healthy(port: int, worker: LocalProcess, state: DemoProgress, view: Any) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.exit_code is not None:
            raise RuntimeError(f"the worker exited with status {worker.exit_code}; see {worker.log}")
        answer = get(f"http://127.0.0.1:{port}/health")
        if answer is not None and answer[0] == 200:
            return
        if view is not None:
            view(state)
        time.sleep(0.3)
    raise RuntimeError("the worker did not become healthy within 90 s; see its log")


def _poll(port: int, state: DemoProgress, view: Any) -> None:
    answer = get(f"http://127.0.0.1:{port}/metrics")
    if answer is not None:
        state.consumed = _metric(answer[1], "streamwatch_events_total")
        state.lag = _metric(answer[1], "streamwatch_consumer_lag")
    if view is not None:
        view(state)


def _close_windows(settings: Settings, scenario: DemoScenario) -> None:
    """A prediction of another model on every partition, minutes later, so every window of the demo closes."""
    end = scenario.start_ms + (scenario.minutes + 3) * 60_000
    with Producer(settings=settings, model="demo-clock", model_version="1") as clock:
        for n in range(3 * 8):  # keys spread over the 3 partitions
            clock.log_prediction(latency_ms=1.0, prediction=0, request_id=f"tick-{n}", timestamp=end + n)
        clock.flush(10)


def _settle(port: int, state: DemoProgress, view: Any, expected: int) -> None:
    """Until the worker consumed everything and no notification came for a few seconds (at most 45 s)."""
    deadline, quiet_since, seen = time.monotonic() + 45, time.monotonic(), len(state.notifications)
    while time.monotonic() < deadline:
        _poll(port, state, view)
        if len(state.notifications) != seen:
            seen, quiet_since = len(state.notifications), time.monotonic()
        if state.consumed >= expected and time.monotonic() - quiet_since > 6:
            return
        time.sleep(0.25)


def _write_report(settings: Settings, scenario: DemoScenario, workdir: Path) -> Path | None:
    from streamwatch.adapters.clickhouse import connect
    from streamwatch.report.html import render_report, report_data

    store = connect(settings.clickhouse)
    data = report_data(store, MODEL, scenario.start_ms, scenario.start_ms + scenario.minutes * 60_000)
    path = workdir / "report.html"
    path.write_text(render_report(data), encoding="utf-8")
    return path  # the chdb files stay in the workdir: `streamwatch report` can read them again


def _estimates(settings: Settings, scenario: DemoScenario) -> list[tuple[int, float, float, float, float | None]]:
    """Production's estimated accuracy for gender=F, with its bounds, beside the realized one, per minute:
    the estimate holds until the fairness regression, when scores stop being calibrated for gender=F."""
    from streamwatch.adapters.clickhouse import connect

    store = connect(settings.clickhouse)
    found = store.query(
        "SELECT toUnixTimestamp64Milli(window_start), metric, value, lower, upper FROM {db}.metrics FINAL "
        "WHERE model = {model:String} AND variant = 'production' AND window = 'tumbling' "
        "AND segment_key = 'gender=F' AND metric IN ('estimated_accuracy', 'accuracy') ORDER BY window_start",
        {"model": MODEL},
    )
    estimated: dict[int, tuple[float, float, float]] = {}
    realized: dict[int, float] = {}
    for start, metric, value, lower, upper in found:
        minute = (int(start) - scenario.start_ms) // 60_000
        if metric == "accuracy":
            realized[minute] = float(value)
        elif lower is not None and upper is not None:
            estimated[minute] = (float(value), float(lower), float(upper))
    return [(m, *estimated[m], realized.get(m)) for m in sorted(estimated)]
