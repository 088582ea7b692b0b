"""Posting to a notification channel over HTTP: the only module that imports httpx.

:class:`HttpClient` makes one attempt per request and says, by raising
:class:`DeliveryError`, whether a failure is worth retrying (timeouts,
connection errors, 408, 429, 5xx) and how long the receiver asked to wait
(``Retry-After``). A request that cannot succeed however often it is tried (a
malformed URL, a scheme httpx does not speak, a reply it cannot decode) is a
non-retryable :class:`DeliveryError` too. Retrying is the dispatcher's business
(:mod:`streamwatch.notify.dispatcher`); which requests a channel gets is
:mod:`streamwatch.notify.channels`' business. Channel URLs and keys are secrets: an error
names the channel, the URL's scheme and host, and the status, never the path,
query, routing key or signing secret. The transport is injected, so a test
can put any ``httpx`` transport underneath.

httpx's timeout applies to each phase (connect, each read, each write), so a
receiver that trickles its answer a byte at a time could hold a request for
hours. Each request also has a total deadline (``total_timeout_s``): every
socket operation of the request is given at most what is left of it. Of the
reply only the status and headers matter: at most ``max_body_bytes`` of its
body are read, undecoded.

>>> retry_after({"Retry-After": "7"}, now_s=0.0), retry_after({}, now_s=0.0)
(7.0, None)
>>> retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now_s=1445412480.0)
10.0
>>> _where("https://hooks.slack.com/services/T0/B0/SECRET"), _where("http://[::1/x"), _where("hooks.slack.com/T0")
('https://hooks.slack.com/…', '<invalid URL>', '<invalid URL>')
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpcore
import httpx

__all__ = ["DeliveryError", "HttpClient", "get", "retry_after"]

# httpx logs every request's full URL at INFO, and Slack and webhook URLs are secrets.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_RETRYABLE_STATUS = {408, 425, 429}
MAX_BODY_BYTES = 64 * 1024  # of a reply: receivers answer "ok" or a short error; the rest is not read


class DeliveryError(Exception):
    """A notification was not accepted. ``retryable``: worth another attempt, after ``retry_after_s`` at least."""

    def __init__(
        self,
        channel: str,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"channel {channel}: {message}")
        self.channel = channel
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status


def retry_after(headers: Mapping[str, str], now_s: float) -> float | None:
    """Seconds the receiver asked us to wait (``Retry-After`` as seconds or an HTTP date), if it did."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError, OverflowError):
        return None


def _where(url: str) -> str:
    # Slack and webhook URLs carry their secret in the path: show scheme and host only.
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "<invalid URL>"  # what is there instead may be anything, the secret included
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}/…"


# The total deadline of the request the current thread is making (time.monotonic()), None outside one.
# httpx sends a request in the calling thread, so its socket operations run in that thread.
_deadline = threading.local()


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the current request's deadline; ``expired`` once none is."""
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, with :class:`_DeadlineStream` streams."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport on :class:`_DeadlineBackend` (httpx takes no network backend: its pool is replaced)."""
    transport = httpx.HTTPTransport()
    # httpx 0.28 keeps its httpcore pool in ``_pool`` (httpx is pinned; tests/notify/test_http.py
    # fails if a trickling receiver is no longer cut off).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_DeadlineBackend(),
    )
    return transport


class HttpClient:
    """One ``httpx.Client`` for every channel; :meth:`post` makes one attempt.

    ``timeout_s`` bounds each phase of a request (connect, each read, each
    write); ``total_timeout_s`` (default twice ``timeout_s``) the whole of it.
    An injected ``transport`` has no total deadline unless it sees to one.
    """

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 5.0,
        total_timeout_s: float | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.total_timeout_s = total_timeout_s if total_timeout_s is not None else 2 * timeout_s
        self.max_body_bytes = max_body_bytes
        self._client = httpx.Client(
            transport=transport if transport is not None else _deadline_transport(),
            timeout=timeout_s,
            follow_redirects=False,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _drain(self, response: httpx.Response) -> None:
        """Read up to ``max_body_bytes`` of the body, raw: one that does not decode does not matter."""
        if response.is_stream_consumed or response.is_closed:
            return  # a response a transport built whole (httpx.MockTransport)
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read >= self.max_body_bytes:
                return  # the connection is closed instead of reused

    def post(self, name: str, url: str, **request: Any) -> None:
        """POST once to ``url`` for channel ``name`` (``json=``, ``content=``, ``headers=`` as httpx takes them).

        Returns when the receiver answered 2xx; raises :class:`DeliveryError` otherwise.
        """
        where = _where(url)
        _deadline.at = time.monotonic() + self.total_timeout_s
        try:
            with self._client.stream("POST", url, **request) as response:
                self._drain(response)
        except httpx.TimeoutException:
            raise DeliveryError(name, f"{where} timed out", retryable=True) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DeliveryError(name, f"cannot post to {where} ({type(exc).__name__})", retryable=False) from None
        except (httpx.DecodingError, httpx.LocalProtocolError) as exc:
            # A reply we cannot read, or a request we cannot send: the same again next time.
            raise DeliveryError(name, f"{where} failed for good ({type(exc).__name__})", retryable=False) from None
        except httpx.TransportError as exc:
            # The exception's text may quote the URL: only its type is kept.
            raise DeliveryError(name, f"{where} unreachable ({type(exc).__name__})", retryable=True) from None
        finally:
            _deadline.at = None
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status in _RETRYABLE_STATUS or status >= 500
        wait = retry_after(response.headers, self.clock())
        raise DeliveryError(
            name,
            f"{where} answered {status} {response.reason_phrase}",
            retryable=retryable,
            retry_after_s=wait,
            status=status,
        )


def get(url: str, timeout_s: float = 1.0) -> tuple[int, str] | None:
    """``(status, body)`` of one GET, or ``None`` when nothing answered (for health and metrics probes)."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.TransportError:
        return None
    return response.status_code, response.text
