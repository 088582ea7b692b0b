"""HttpClient against real sockets that misbehave: garbled gzip, trickled answers, endless bodies, bad URLs."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import httpx
import pytest

from streamwatch.adapters.http import DeliveryError, HttpClient
from tests.receivers import RecordingReceiver

SECRET_PATH = "/services/T0SECRET/B0/XXXXSECRET"


class RawServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 that reads a request's head and then answers with ``answer(socket)``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.done = threading.Event()
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.done.set()
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SECRET_PATH}"


class _RawHandler(socketserver.BaseRequestHandler):
    server: RawServer

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        with contextlib.suppress(OSError):  # the client hung up: what these tests want
            self.server.answer(self.request)


def trickle(server_done: threading.Event) -> Callable[[socket.socket], None]:
    """An answer a byte every 0.2 s, forever: each read is quick, the whole never ends."""

    def answer(sock: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000:
            if server_done.is_set():
                return
            sock.sendall(bytes([byte]))
            time.sleep(0.2)

    return answer


def endless(server_done: threading.Event) -> Callable[[socket.socket], None]:
    """A 200 whose body never ends (no Content-Length, then bytes as fast as they go)."""

    def answer(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        while not server_done.is_set():
            sock.sendall(b"x" * 65536)

    return answer


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


def test_a_garbled_gzip_reply_is_read_as_its_status(receiver: RecordingReceiver) -> None:
    gzip = {"Content-Encoding": "gzip"}  # the body is plain JSON: not gzip at all
    receiver.fail_next(1, status=200, headers=gzip)
    receiver.fail_next(1, status=503, headers=gzip)
    receiver.fail_next(1, status=400, headers=gzip)
    with HttpClient(timeout_s=1.0) as client:
        client.post("hook", receiver.url + SECRET_PATH, json={"n": 1})  # accepted: the body is not decoded
        with pytest.raises(DeliveryError) as unavailable:
            client.post("hook", receiver.url + SECRET_PATH, json={"n": 2})
        assert (unavailable.value.status, unavailable.value.retryable) == (503, True)
        with pytest.raises(DeliveryError) as refused:
            client.post("hook", receiver.url + SECRET_PATH, json={"n": 3})
        assert (refused.value.status, refused.value.retryable) == (400, False)
        client.post("hook", receiver.url + SECRET_PATH, json={"n": 4})
    assert len(receiver.requests) == 2


def test_a_reply_that_cannot_be_decoded_is_a_permanent_failure_naming_no_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError(f"Error -3 while decompressing {request.url}", request=request)

    with HttpClient(transport=httpx.MockTransport(handler)) as client, pytest.raises(DeliveryError) as caught:
        client.post("slack", "https://hooks.example" + SECRET_PATH, json={})
    assert not caught.value.retryable
    assert str(caught.value) == "channel slack: https://hooks.example/… failed for good (DecodingError)"


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1" + SECRET_PATH,  # InvalidURL
        "ftp://hooks.example" + SECRET_PATH,  # UnsupportedProtocol
        "hooks.example" + SECRET_PATH,  # no scheme
        "http://:80" + SECRET_PATH,  # no host
        "",
    ],
)
def test_a_url_that_cannot_be_posted_to_is_a_permanent_failure_naming_no_secret(url: str) -> None:
    with HttpClient(timeout_s=0.5) as client, pytest.raises(DeliveryError) as caught:
        client.post("slack", url, json={})
    assert not caught.value.retryable
    assert "SECRET" not in str(caught.value) and str(caught.value).startswith("channel slack: cannot post to")


def test_a_trickled_answer_is_cut_off_at_the_total_deadline() -> None:
    done = threading.Event()
    with RawServer(trickle(done)) as server, HttpClient(timeout_s=1.0, total_timeout_s=1.5) as client:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="timed out") as caught:
            client.post("hook", server.url, json={})
        took = time.monotonic() - started
        done.set()
    assert caught.value.retryable
    assert 1.4 <= took < 3.0, took  # every read was well within the 1 s timeout


def test_an_endless_body_is_not_read_to_its_end() -> None:
    done = threading.Event()
    with RawServer(endless(done)) as server, HttpClient(timeout_s=1.0, total_timeout_s=10.0) as client:
        started = time.monotonic()
        client.post("hook", server.url, json={})  # a 200: accepted after at most max_body_bytes
        took = time.monotonic() - started
        done.set()
    assert took < 2.0, took


def test_the_deadline_is_per_request_not_per_client(receiver: RecordingReceiver) -> None:
    with HttpClient(timeout_s=1.0, total_timeout_s=1.0) as client:
        for n in range(5):
            client.post("hook", receiver.url + "/hook", json={"n": n})
            time.sleep(0.3)  # 1.5 s in all: longer than one deadline
        receiver.delay_next(1, 1.5)
        with pytest.raises(DeliveryError, match="timed out"):
            client.post("hook", receiver.url + "/hook", json={"n": 5})
        client.post("hook", receiver.url + "/hook", json={"n": 6})
    assert len(receiver.requests) == 6
