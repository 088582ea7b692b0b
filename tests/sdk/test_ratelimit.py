from __future__ import annotations

import logging
import threading

import pytest

from streamwatch.sdk.ratelimit import Counter, RateLimitedLog


def test_counter_is_exact_across_threads() -> None:
    counter = Counter()
    reads = []

    def work() -> None:
        for _ in range(50_000):
            counter.incr()
        reads.append(counter.value())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value() == 200_000 == max(reads)


def test_suppressed_lines_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t"), 10.0, clock=lambda: now[0])
    for _ in range(5):
        log.warning("down", "broker %s down", "b1")
    log.warning("other", "a different kind is not suppressed")
    now[0] = 10.0
    log.warning("down", "broker %s down", "b1")
    assert [r.getMessage() for r in caplog.records] == [
        "broker b1 down",
        "a different kind is not suppressed",
        "broker b1 down (4 similar messages suppressed)",
    ]
