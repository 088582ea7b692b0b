from __future__ import annotations

import pytest

from streamwatch.contract.ids import event_id_factory, new_request_id, request_id_from_headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "abc"}, "abc"),
        ({"X-Correlation-ID": " corr-1 "}, "corr-1"),
        ({"X-Request-ID": "a", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "a"),
        (
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
    ],
)
def test_request_id_is_taken_from_headers(headers: dict[str, str], expected: str) -> None:
    assert request_id_from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Request-ID": ""},
        {"X-Request-ID": "x" * 129},
        {"X-Request-ID": "a\nb"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": "garbage"},
    ],
)
def test_unusable_headers_give_a_new_id(headers: dict[str, str]) -> None:
    rid = request_id_from_headers(headers)
    assert len(rid) == 32 and int(rid, 16) >= 0


def test_ids_are_unique() -> None:
    assert len({new_request_id() for _ in range(10_000)}) == 10_000
    first, second = event_id_factory(), event_id_factory()
    ids = {first() for _ in range(10_000)} | {second() for _ in range(10_000)}
    assert len(ids) == 20_000
