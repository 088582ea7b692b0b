"""The producer SDK that inference services call on every request.

Its one promise is to never hurt the service it monitors:

* it validates cheaply in the caller's thread (see :mod:`streamwatch.contract.encode`);
  ``log_prediction`` inlines the checks a typical event needs and leaves the rest
  to the encoder, whose verdicts it keeps (``tests/sdk/test_fast_path.py``);
* it hands bytes to librdkafka and returns; it never waits for the broker;
* its buffer is bounded: when the broker is down and the buffer fills, events
  are dropped and counted, never blocked on and never raised;
* an invalid event is dropped and counted too, with a rate-limited warning that
  names the field (``strict=True`` raises instead, for tests and development).

Delivery failures are logged at most once per ``log_interval`` seconds per
kind, with the number suppressed. Counters are read with :meth:`Producer.stats`.

A producer made before ``fork()`` (gunicorn ``--preload``, multiprocessing)
keeps working in the child: librdkafka's threads do not survive a fork, so the
child leaves the inherited client alone and builds its own on its first event,
with counters starting from zero. Events the parent had not yet delivered stay
the parent's. (An injected transport is the caller's to rebuild.)

A service that exits without calling :meth:`Producer.close` still gets its
events delivered: at interpreter exit an open producer is closed, which
flushes for up to ``close_timeout`` seconds. A producer dropped without
``close()`` is closed in the background. Neither hook keeps the producer alive.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.encode import _PLAIN, _STR_ONLY, Encoder, strings_fit
from streamwatch.contract.ids import new_request_id
from streamwatch.contract.limits import (
    MAX_EVENT_BYTES,
    MAX_FEATURES,
    MAX_ID_LENGTH,
    MAX_MAP_ENTRIES,
    MAX_STRING_LENGTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
)
from streamwatch.errors import ContractError
from streamwatch.sdk.ratelimit import Counter, RateLimitedLog

__all__ = ["Producer", "ProducerStats", "Transport"]

_log = logging.getLogger("streamwatch.producer")

# Module globals read on the hot path (a global is one dict lookup; a module attribute is two).
_dumps = orjson.dumps
_INF = math.inf
_MAX_ID_LENGTH, _MAX_FEATURES, _MAX_MAP_ENTRIES = MAX_ID_LENGTH, MAX_FEATURES, MAX_MAP_ENTRIES
_MAX_STRING_LENGTH, _MAX_EVENT_BYTES = MAX_STRING_LENGTH, MAX_EVENT_BYTES
_MIN_TIMESTAMP_MS, _MAX_TIMESTAMP_MS = MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS


def _event_ids() -> Iterator[str]:
    """Event ids as :func:`~streamwatch.contract.ids.event_id_factory` makes them (96 random bits, then a
    counter in hex), as an iterator: ``next()`` on it is one C call, a third cheaper than calling a lambda.

    >>> ids = _event_ids()
    >>> first, second = next(ids), next(ids)
    >>> len(first), first[:24] == second[:24], first[24:], second[24:]
    (26, True, '-1', '-2')
    """
    return map(f"{os.urandom(12).hex()}-%x".__mod__, itertools.count(1))


# Clients inherited across fork(): their threads are gone, and destroying them
# could wait on those threads forever, so a child process keeps them alive.
_FORK_ORPHANS: list[object] = []


class _Lifecycle:
    """What closing a producer needs, kept apart from the producer itself.

    The exit hook and the producer's finalizer hold this, never the producer
    (the transport's callbacks reach the producer through a weak reference
    only), so neither keeps a dropped producer alive.
    """

    def __init__(self, transport: Transport | None, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.closed = threading.Event()
        self.poller: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done = False

    def start(self) -> None:
        """Serve delivery reports on a background thread, and close at exit if still open."""
        # The thread sleeps inside librdkafka (GIL released), so the caller never pays for them.
        self.poller = threading.Thread(
            target=_poll_forever, args=(self.transport, self.closed), name="streamwatch-producer-poll", daemon=True
        )
        self.poller.start()
        atexit.register(self.at_exit)

    def close(self, timeout: float) -> int:
        """Stop polling, flush for up to ``timeout`` s and give up on the rest; return how many were given up."""
        with self._lock:  # a second caller waits for the first, then finds nothing to do
            if self._done:
                return 0
            self._done = True
            self.closed.set()
            atexit.unregister(self.at_exit)
            if self.transport is None:
                return 0
            if self.poller is not None:
                self.poller.join()
            return self.transport.close(timeout)

    def at_exit(self) -> None:
        self.close(self.timeout)

    def abandon(self) -> None:
        """The producer was dropped without ``close()``: close it without blocking whoever dropped it."""
        if self._done:
            return
        with contextlib.suppress(RuntimeError):  # the interpreter is shutting down: the exit hook closes it
            threading.Thread(target=self._close_abandoned, name="streamwatch-producer-close", daemon=True).start()

    def _close_abandoned(self) -> None:
        # The producer is gone, so its delivery-failure warnings are too: say it here.
        remaining = self.close(self.timeout)
        if remaining:
            _log.warning("a producer dropped without close() gave up on %d undelivered events", remaining)

    def disown(self) -> None:
        """In a forked child: the inherited client is not ours to flush or close."""
        self._lock = threading.Lock()  # it may have been held at the fork
        self._done = True
        atexit.unregister(self.at_exit)


def _poll_forever(transport: Transport | None, closed: threading.Event) -> None:
    while transport is not None and not closed.is_set():
        transport.poll(0.2)


class Transport(Protocol):
    """What the producer needs from a Kafka client; see :class:`streamwatch.adapters.kafka.KafkaTransport`.

    ``send`` raises BufferError when its bounded buffer is full, or one of
    ``send_errors`` when it refuses a message.
    """

    send_errors: tuple[type[Exception], ...]

    def send(self, topic: str, value: bytes, key: str | bytes | None) -> None: ...
    def poll(self, timeout: float) -> None: ...
    def flush(self, timeout: float) -> int: ...
    def pending(self) -> int: ...
    def close(self, timeout: float) -> int: ...


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """A snapshot of the producer's counters. Every event logged ends in exactly one of
    ``delivered``, ``in_flight``, ``delivery_failed``, ``dropped_buffer_full``,
    ``dropped_invalid`` or ``dropped_error``."""

    logged: int
    queued: int
    delivered: int
    in_flight: int
    delivery_failed: int
    dropped_buffer_full: int
    dropped_invalid: int
    dropped_error: int

    @property
    def dropped(self) -> int:
        return self.dropped_buffer_full + self.dropped_invalid + self.dropped_error + self.delivery_failed


class Producer:
    """Publish prediction, feature and label events to Kafka without blocking.

    Parameters
    ----------
    bootstrap_servers
        Overrides ``settings.kafka.bootstrap_servers``.
    model, model_version
        Defaults for every call, so a service serving one model need not repeat them.
    settings
        Defaults to :func:`~streamwatch.config.settings.load_settings` (environment and
        ``STREAMWATCH_CONFIG_FILE``).
    strict
        Raise :class:`~streamwatch.errors.ContractError` for invalid events
        instead of dropping and counting them. Defaults to ``settings.producer.strict``.
    transport
        The Kafka client; built from the settings when not given.
    log_interval
        Seconds between two log lines about the same kind of failure.
    close_timeout
        How long :meth:`close` flushes by default, and how long the interpreter
        waits at exit for the events of a producer never closed.

    Examples
    --------
    Needs a broker, so it is shown rather than run here (``tests/test_producer.py`` runs it)::

        monitor = Producer("127.0.0.1:9092", model="credit-risk", model_version="3.1.0")
        with monitor:
            rid = monitor.log_prediction(features={"age": 42}, prediction=1, score=0.8, latency_ms=12.5)
            monitor.log_label(request_id=rid, label=0)
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        model: str | None = None,
        model_version: str | None = None,
        settings: Settings | None = None,
        strict: bool | None = None,
        transport: Transport | None = None,
        log_interval: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        settings = settings or load_settings()
        if bootstrap_servers is not None:
            kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
            settings = settings.model_copy(update={"kafka": kafka})
        self.settings = settings
        self.strict = settings.producer.strict if strict is None else strict
        self._topics = settings.topics
        self._encoder = Encoder(clock_ms=now_ms)
        self._names = self._encoder.names
        self._new_event_ids()
        self._model, self._model_version = model, model_version
        self._heads = self._encoder.prediction_heads(model, model_version)
        self._log = RateLimitedLog(_log, log_interval)
        self.close_timeout = close_timeout
        self._reset_counters()
        self._build_transport = None
        alive = weakref.ref(self)  # the client's callbacks must not keep the producer alive
        if transport is None:
            from streamwatch.adapters.kafka import KafkaTransport  # deferred: keeps `import streamwatch` light

            def on_failure(topic: str, reason: str) -> None:
                producer = alive()
                if producer is not None:
                    producer._on_failure(topic, reason)

            def on_error(reason: str) -> None:
                producer = alive()
                if producer is not None:
                    producer._on_error(reason)

            def build() -> Transport:
                return KafkaTransport(settings.kafka, settings.producer, on_failure=on_failure, on_error=on_error)

            self._build_transport = build
            transport = build()

            def after_fork_in_child() -> None:
                producer = alive()
                if producer is not None:
                    producer._after_fork()

            os.register_at_fork(after_in_child=after_fork_in_child)
        self._encode_prediction = self._encoder.prediction
        self._prediction_topic = self._topics.predictions
        self._open = True
        self._attach(transport)

    # The defaults are properties so that changing one also changes the prediction heads the fast path uses.
    @property
    def model(self) -> str | None:
        return self._model

    @model.setter
    def model(self, value: str | None) -> None:
        self._model = value
        self._heads = self._encoder.prediction_heads(value, self._model_version)

    @property
    def model_version(self) -> str | None:
        return self._model_version

    @model_version.setter
    def model_version(self, value: str | None) -> None:
        self._model_version = value
        self._heads = self._encoder.prediction_heads(self._model, value)

    def _new_event_ids(self) -> None:
        # One iterator serves the fast path and the encoder, so their ids never collide.
        self._event_ids = _event_ids()
        self._encoder.event_ids = self._event_ids.__next__

    def _reset_counters(self) -> None:
        self._queued, self._failed, self._full = Counter(), Counter(), Counter()
        self._invalid, self._error = Counter(), Counter()
        self._queued_incr = self._queued.incr

    def _attach(self, transport: Transport) -> None:
        self._transport: Transport | None = transport
        self._produce = transport.send
        self._send_errors = transport.send_errors
        self._lifecycle = _Lifecycle(transport, self.close_timeout)
        self._closed = self._lifecycle.closed
        self._lifecycle.start()
        # Dropped without close(): closed in the background. At exit, the atexit hook closes it.
        self._finalizer = weakref.finalize(self, self._lifecycle.abandon)
        self._finalizer.atexit = False

    def _after_fork(self) -> None:
        """In a forked child: drop the parent's client and counters; the next event builds a new client."""
        _FORK_ORPHANS.append(self._transport)
        self._lifecycle.disown()
        self._finalizer.detach()
        self._lifecycle = _Lifecycle(None, self.close_timeout)
        self._reset_counters()
        self._new_event_ids()  # the parent goes on counting from the same prefix: the child's ids would repeat its
        self._log = RateLimitedLog(_log, self._log.interval)  # its lock may have been held at the fork
        self._rebuild_lock = threading.Lock()
        self._transport = None
        self._closed = self._lifecycle.closed
        self._produce = self._send_after_fork

    def _send_after_fork(self, topic: str, value: bytes, key: str | bytes | None) -> None:
        with self._rebuild_lock:
            if self._transport is None and self._build_transport is not None:
                self._attach(self._build_transport())
        self._produce(topic, value, key)

    # -- logging events ------------------------------------------------------------

    def log_prediction(
        self,
        *,
        features: Mapping[str, Any] | None = None,
        prediction: Any = None,
        latency_ms: float,
        score: float | None = None,
        request_id: str | None = None,
        model: str | None = None,
        model_version: str | None = None,
        variant: str = "production",
        status: str = "ok",
        error: Any = None,
        segments: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
        embeddings: Mapping[str, Any] | None = None,
    ) -> str:
        """Publish one prediction; return its ``request_id`` (made here when not given).

        ``embeddings`` maps a name to a vector, e.g. a numpy array (sent at float32 precision).
        """
        if request_id is None:
            request_id = new_request_id()
        payload = None
        # The fast path, for the call inference makes on every request: the contract's checks
        # that a typical event needs, inlined, and one orjson call whose constant part (type,
        # model, version, variant, status) was serialised once. Whatever it is not sure of (a
        # name not seen yet, numpy values, large or unusual events) it leaves to the encoder,
        # which has the last word: the fast path only accepts what the encoder accepts, and
        # emits the same JSON object (members in another order).
        if error is None and metadata is None and embeddings is None:
            try:
                if model is None and model_version is None:
                    head = self._heads[variant]  # KeyError for anything but a valid variant
                else:
                    heads = self._encoder.prediction_heads(model or self._model, model_version or self._model_version)
                    head = heads[variant]
                sure = True
                if timestamp is None:
                    timestamp = now_ms()
                elif not (type(timestamp) is int and _MIN_TIMESTAMP_MS <= timestamp <= _MAX_TIMESTAMP_MS):
                    sure = False  # a datetime, or a time out of range
                kind = type(prediction)
                kind_score = type(score)
                kind_latency = type(latency_ms)
                if (
                    sure
                    and status == "ok"
                    and event_id is None
                    and type(request_id) is str
                    and 0 < len(request_id) <= _MAX_ID_LENGTH
                    and request_id.isprintable()
                    and (kind is int or kind is str or kind is bool or (kind is float and -_INF < prediction < _INF))
                    and (score is None or ((kind_score is float or kind_score is int) and 0.0 <= score <= 1.0))
                    and (kind_latency is float or kind_latency is int)
                    and 0.0 <= latency_ms < _INF
                    and (
                        features is None
                        or (
                            type(features) is dict
                            and len(features) <= _MAX_FEATURES
                            and self._names.issuperset(features)
                            and _PLAIN.issuperset(map(type, features.values()))
                        )
                    )
                    and (
                        segments is None
                        or (
                            type(segments) is dict
                            and len(segments) <= _MAX_MAP_ENTRIES
                            and self._names.issuperset(segments)
                            and _STR_ONLY.issuperset(map(type, segments.values()))
                        )
                    )
                ):
                    payload = _dumps(
                        {
                            "type": head,
                            "event_id": next(self._event_ids),
                            "request_id": request_id,
                            "timestamp": timestamp,
                            "features": features or {},
                            "prediction": prediction,
                            "score": score,
                            "latency_ms": latency_ms,
                            "segments": segments or {},
                        }
                    )
                    # Only an event longer than the string limit can hold a string over it.
                    if len(payload) > _MAX_STRING_LENGTH and (
                        len(payload) > _MAX_EVENT_BYTES or not strings_fit(features or {}, segments or {}, prediction)
                    ):
                        payload = None
            except Exception:  # an unknown variant, an integer over 64 bits...: the encoder says what is wrong
                payload = None
        if payload is None:
            try:
                payload = self._encode_prediction(
                    model or self.model,
                    model_version or self.model_version,
                    request_id,
                    latency_ms,
                    features,
                    prediction,
                    score,
                    variant,
                    status,
                    error,
                    segments,
                    metadata,
                    timestamp,
                    event_id,
                    embeddings,
                )
            except ContractError as exc:
                self._reject(exc, "prediction")
                return request_id
        # Inlined rather than calling _send: this is the call inference pays for.
        if self._open:
            try:
                self._produce(self._prediction_topic, payload, request_id)
            except BufferError:
                self._buffer_full()
                return request_id
            except self._send_errors as exc:
                self._refused(self._prediction_topic, exc)
                return request_id
            self._queued_incr()
            return request_id
        self._send(self._prediction_topic, payload, request_id)
        return request_id

    def log_features(
        self,
        *,
        features: Mapping[str, Any],
        model: str | None = None,
        model_version: str | None = None,
        request_id: str | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
    ) -> None:
        """Publish feature values logged apart from a prediction."""
        try:
            payload = self._encoder.features(
                model=model or self.model,
                model_version=model_version or self.model_version,
                features=features,
                request_id=request_id,
                timestamp=timestamp,
                event_id=event_id,
            )
        except ContractError as exc:
            self._reject(exc, "feature")
            return
        self._send(self._topics.features, payload, request_id)

    def log_label(
        self,
        *,
        request_id: str,
        label: Any,
        model: str | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
    ) -> None:
        """Publish the ground truth for an earlier prediction."""
        try:
            payload = self._encoder.label(
                model=model or self.model, request_id=request_id, label=label, timestamp=timestamp, event_id=event_id
            )
        except ContractError as exc:
            self._reject(exc, "label")
            return
        self._send(self._topics.labels, payload, request_id)

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, topic: str, payload: bytes, key: str | None) -> None:
        # Keyed by request_id: a prediction, its label and its shadow/canary twins
        # land on the same partition number, which the label join relies on.
        if not self._open:
            self._error.incr()
            self._log.warning("closed", "producer is closed: dropping events")
            return
        try:
            self._produce(topic, payload, key)
        except BufferError:
            self._buffer_full()
            return
        except self._send_errors as exc:  # never raise into the inference path
            self._refused(topic, exc)
            return
        self._queued_incr()

    def _buffer_full(self) -> None:
        self._full.incr()
        self._log.warning("buffer_full", "producer buffer full (broker slow or down): dropping events")

    def _refused(self, topic: str, exc: Exception) -> None:
        self._error.incr()
        self._log.warning("send_error", "producer refused an event for topic %s: %s", topic, exc)

    def _reject(self, exc: ContractError, kind: str) -> None:
        if self.strict:
            raise exc
        self._invalid.incr()
        self._log.warning(f"invalid_{kind}", "dropped an invalid %s event: %s", kind, exc)

    def _on_failure(self, topic: str, reason: str) -> None:
        self._failed.incr()
        self._log.warning("delivery_failed", "event for topic %s not delivered: %s", topic, reason)

    def _on_error(self, reason: str) -> None:
        self._log.warning("client_error", "Kafka client error: %s", reason)

    # -- public state ---------------------------------------------------------------

    def stats(self) -> ProducerStats:
        """Read the counters. Cheap enough to export as metrics on every scrape."""
        # Read in the order events move (queued, in flight, failed), so an event
        # moving on between two reads is counted twice, not missed: "delivered"
        # may lag for a moment but never over-counts.
        queued = self._queued.value()
        transport = self._transport
        in_flight = 0 if self._closed.is_set() or transport is None else transport.pending()
        failed = self._failed.value()
        full, invalid, error = self._full.value(), self._invalid.value(), self._error.value()
        return ProducerStats(
            logged=queued + full + invalid + error,
            queued=queued,
            delivered=max(queued - in_flight - failed, 0),
            in_flight=in_flight,
            delivery_failed=failed,
            dropped_buffer_full=full,
            dropped_invalid=invalid,
            dropped_error=error,
        )

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for queued events; return how many are still in flight."""
        transport = self._transport
        return 0 if self._closed.is_set() or transport is None else transport.flush(timeout)

    def close(self, timeout: float | None = None) -> int:
        """Flush for up to ``timeout`` seconds (default ``close_timeout``), then give up on what is left.

        Returns how many events were still in flight; they are counted as
        ``delivery_failed``. Logging after ``close()`` drops and counts events.
        """
        self._open = False
        self._finalizer.detach()
        return self._lifecycle.close(self.close_timeout if timeout is None else timeout)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Producer(bootstrap_servers={self.settings.kafka.bootstrap_servers!r}, model={self.model!r})"
