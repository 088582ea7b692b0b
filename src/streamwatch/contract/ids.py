"""Request and event ids.

``request_id`` is the correlation id a prediction, its label and its
shadow/canary twins share; the inference service makes one per request and
passes it along. ``event_id`` only has to be unique, and it is made on the hot
path, so it is a random per-process prefix plus a counter rather than a UUID
(``uuid4()`` costs about 1.5 µs, a counter about 0.1 µs).
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Callable, Mapping

__all__ = ["event_id_factory", "new_request_id", "request_id_from_headers"]

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id")


def new_request_id() -> str:
    """Return a new random request id (32 lowercase hex characters).

    >>> len(new_request_id()), new_request_id() != new_request_id()
    (32, True)
    """
    return uuid.uuid4().hex


def request_id_from_headers(headers: Mapping[str, str]) -> str:
    """Reuse the caller's request id when it sent one, so traces line up.

    Looks at ``X-Request-ID``, ``X-Correlation-ID`` and ``Request-Id``, then at
    the trace id of a W3C ``traceparent``; otherwise makes a new id. Header
    names are matched case-insensitively. Ids longer than 128 characters or
    with control characters are ignored, as the contract would reject them.

    >>> request_id_from_headers({"X-Request-ID": "abc-123"})
    'abc-123'
    >>> request_id_from_headers(
    ...     {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    '4bf92f3577b34da6a3ce929d0e0e4736'
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in _REQUEST_ID_HEADERS:
        value = lowered.get(name, "").strip()
        if 0 < len(value) <= 128 and value.isprintable():
            return value
    match = _TRACEPARENT.match(lowered.get("traceparent", "").strip())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return new_request_id()


def event_id_factory(prefix: str | None = None) -> Callable[[], str]:
    """Return a function making unique event ids: 96 random bits, then a counter.

    >>> next_id = event_id_factory(prefix="abc")
    >>> next_id(), next_id()
    ('abc-1', 'abc-2')
    """
    prefix = prefix if prefix is not None else os.urandom(12).hex()
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter):x}"
