"""The Faust app: wiring only, and the only module that imports ``faust``.

Faust is the worker's frame: the app, its lifecycle and signal handling, a
timer that records the worker's own metrics, and the web server with
``/metrics`` and ``/health``. Events do not flow through Faust streams: Faust
costs ~220 µs of CPU per event there (see the documentation), ~100x the Kafka client
below it. A task runs :class:`~streamwatch.runtime.loop.WorkerRuntime` in a thread
of its own instead, which consumes batches of raw bytes with confluent-kafka
and hands them to the columnar core.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import shutil
import ssl
import tempfile
import threading
import time
from typing import Any

import faust

from streamwatch.config.settings import KafkaSettings
from streamwatch.runtime.loop import WorkerRuntime

__all__ = ["broker_credentials", "build_app", "run_worker"]

_log = logging.getLogger("streamwatch.worker")


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust's own connection to Kafka, secured like streamwatch's clients (``None`` for PLAINTEXT)."""
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(kafka.ssl_ca_location) if kafka.ssl_ca_location else None)
        if kafka.ssl_certificate_location and kafka.ssl_key_location:
            context.load_cert_chain(
                str(kafka.ssl_certificate_location),
                str(kafka.ssl_key_location),
                kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None,
            )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )


def build_app(
    runtime_factory: Any, *, app_id: str, broker: str, web_host: str, web_port: int, credentials: Any = None
) -> faust.App:
    """A Faust app whose task runs the runtime ``runtime_factory()`` builds, in a thread of its own.

    The runtime is built inside that thread: the Kafka consumer and the
    ClickHouse client are used from it alone.
    """
    # Faust keeps a data directory (``<app_id>-data`` in the working directory by default) even with the memory
    # store. The app id names the process, so each start left a new one behind: in /data, the image's volume, or
    # wherever a worker ran. Nothing in it outlives the process, so it goes in a temporary directory, removed at exit.
    datadir = tempfile.mkdtemp(prefix=f"streamwatch-faust-{app_id[:40]}-")
    atexit.register(shutil.rmtree, datadir, ignore_errors=True)
    app = faust.App(
        app_id,
        datadir=datadir,
        broker=broker,
        web_host=web_host,
        web_port=web_port,
        web_enabled=True,
        autodiscover=False,
        store="memory://",
        # A worker that crashed is noticed in seconds, not Faust's default minute: its replacement
        # waits for the dead member to leave the app's group before its task starts.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_credentials=credentials,
    )
    stopping = threading.Event()
    holder: dict[str, Any] = {"runtime": None, "last_step": None, "error": None}

    def run() -> None:
        runtime: WorkerRuntime = runtime_factory()
        holder["runtime"] = runtime
        try:
            while not stopping.is_set():
                runtime.step()
                holder["last_step"] = time.monotonic()
        except Exception as exc:  # the task logs it; /health turns red
            holder["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            runtime.close()

    @app.task
    async def batches() -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, run)
        except Exception:
            _log.exception("the batch loop stopped")
            raise

    @app.on_before_shutdown.connect
    async def stop(app: faust.App, /, *args: Any, **kwargs: Any) -> None:  # mode's receiver: (sender, *args, **kw)
        stopping.set()

    @app.timer(30.0)
    async def log_status() -> None:
        runtime = holder["runtime"]
        if runtime is not None:
            _log.info(
                "worker status",
                extra={"partitions": sorted(runtime.streams), "reporting": runtime.report_runner.active},
            )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        runtime = holder["runtime"]
        body = runtime.metrics.exposition() if runtime is not None else b""
        return web.bytes(body, content_type="text/plain; version=0.0.4")

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        runtime, last = holder["runtime"], holder["last_step"]
        ok = runtime is not None and holder["error"] is None and last is not None and time.monotonic() - last < 60
        body = {
            "status": "ok" if ok else "failing",
            "error": holder["error"],
            "partitions": sorted(runtime.streams) if runtime else [],
            "seconds_since_last_batch": None if last is None else round(time.monotonic() - last, 3),
        }
        return web.json(body, status=200 if ok else 503)

    return app


def run_worker(app: faust.App, loglevel: str = "info") -> None:
    """Run the app until SIGTERM or SIGINT, as ``faust worker`` would."""
    # What start-up created (modules, profiles) stays put: keep the garbage collector from rescanning
    # those ~170k objects in every full collection (~3 µs an event, see bench/core.py).
    gc.freeze()
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.execute_from_commandline()
