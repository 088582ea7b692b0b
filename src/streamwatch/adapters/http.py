"""Posting to a notification channel over HTTP: the only module that imports httpx.

:class:`HttpClient` makes one attempt per request and says, by raising
:class:`DeliveryError`, whether a failure is worth retrying (timeouts,
connection errors, 408, 429, 5xx) and how long the receiver asked to wait
(``Retry-After``). Retrying is the dispatcher's business
(:mod:`streamwatch.notify.dispatcher`); which requests a channel gets is
:mod:`streamwatch.notify.channels`' business. Channel URLs and keys are secrets: an error
names the channel, the URL's scheme and host, and the status, never the path,
query, routing key or signing secret. The transport is injected, so a test
can put any ``httpx`` transport underneath.

>>> retry_after({"Retry-After": "7"}, now_s=0.0), retry_after({}, now_s=0.0)
(7.0, None)
>>> retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now_s=1445412480.0)
10.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

__all__ = ["DeliveryError", "HttpClient", "get", "retry_after"]

# httpx logs every request's full URL at INFO, and Slack and webhook URLs are secrets.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_RETRYABLE_STATUS = {408, 425, 429}


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
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError):
        return None


def _where(url: str) -> str:
    # Slack and webhook URLs carry their secret in the path: show scheme and host only.
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}/…"


class HttpClient:
    """One ``httpx.Client`` for every channel; :meth:`post` makes one attempt."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._client = httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=False)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def post(self, name: str, url: str, **request: Any) -> None:
        """POST once to ``url`` for channel ``name`` (``json=``, ``content=``, ``headers=`` as httpx takes them).

        Returns when the receiver answered 2xx; raises :class:`DeliveryError` otherwise.
        """
        where = _where(url)
        try:
            response = self._client.post(url, **request)
        except httpx.TimeoutException:
            raise DeliveryError(name, f"{where} timed out", retryable=True) from None
        except httpx.TransportError as exc:
            # The exception's text may quote the URL: only its type is kept.
            raise DeliveryError(name, f"{where} unreachable ({type(exc).__name__})", retryable=True) from None
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
