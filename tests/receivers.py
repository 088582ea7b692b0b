"""A real HTTP receiver for tests: records what Slack, PagerDuty, webhook receivers would get, and can misbehave.

``RecordingReceiver`` serves on 127.0.0.1 (a real TCP socket, ``http.server``)
in a thread. Accepted requests land in ``requests`` as (method, path, headers,
body) with their arrival time in ``request_times``; every attempt, refused or
not, in ``attempts`` as (time, path, status). It can be told to refuse the next
requests (``fail_next``), to answer them too late (``delay_next``), or to
refuse every request to some paths (``fail_paths``).
"""

from __future__ import annotations

import http.server
import threading
import time
from types import TracebackType
from typing import Any


class RecordingReceiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.request_times: list[float] = []
        self.attempts: list[tuple[float, str, int]] = []
        self._script: list[tuple[int, dict[str, str], float]] = []  # (status, headers, delay) per next request
        self._failing: set[str] = set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> RecordingReceiver:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail_next(self, n: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self._script += [(status, headers or {}, 0.0)] * n

    def delay_next(self, n: int, seconds: float) -> None:
        with self.lock:
            self._script += [(200, {}, seconds)] * n

    def fail_paths(self, paths: set[str]) -> None:
        with self.lock:
            self._failing = set(paths)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` requests were accepted; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests after {timeout} s"
            time.sleep(0.01)

    def _answer(self, path: str) -> tuple[int, dict[str, str], float]:
        with self.lock:
            if path in self._failing:
                return 503, {}, 0.0
            return self._script.pop(0) if self._script else (200, {}, 0.0)

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.attempts.append((now, path, status))
            if status < 300:
                self.requests.append((method, path, headers, body))
                self.request_times.append(now)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RecordingReceiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, delay = self.server._answer(self.path)
        if delay:
            time.sleep(delay)  # the client has given up by now: this one does not count as accepted
            status = 599
        self.server._record("POST", self.path, dict(self.headers.items()), body, status)
        if status == 599:
            return
        payload = b'{"status":"success"}' if status < 300 else b'{"error":"scripted failure"}'
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass
