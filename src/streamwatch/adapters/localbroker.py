"""A local Kafka-protocol broker (and the demo's other processes), with nothing to install.

It runs noida-db (a single-binary broker speaking the Kafka protocol, from
PyPI) on 127.0.0.1. It is not a production broker: use Apache Kafka there
(see ``docker-compose.yml``).
"""

from __future__ import annotations

import importlib.resources
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from streamwatch.errors import ConfigError

__all__ = ["LocalKafka", "LocalProcess", "free_port"]


class LocalProcess:
    """A child process of the demo (a worker, a consumer), its output going to ``log``; stopped gently, then not."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self._process = subprocess.Popen(args, stdout=self._file, stderr=subprocess.STDOUT)

    @property
    def exit_code(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._file.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary() -> Path:
    try:
        import noida_db
    except ImportError:
        raise ConfigError("the local broker needs the noida-db package: pip install 'streamwatch[demo]'") from None
    # The executable itself, not the console script: stopping the script's
    # Python wrapper would leave the broker running.
    return Path(str(importlib.resources.files(noida_db) / "noida-db"))


class LocalKafka:
    """Start and stop a broker on ``127.0.0.1:port``.

    ``data_dir`` keeps the broker's state across a stop and a start; a
    temporary directory is used (and removed) when it is not given.

    >>> with LocalKafka() as broker:
    ...     broker.bootstrap_servers.startswith("127.0.0.1:")
    True
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="streamwatch-kafka-")) if data_dir is None else data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> str:
        """Start the broker and wait until it accepts connections; return its address."""
        if self.running:
            return self.bootstrap_servers
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "broker.log").open("ab")
        command = [str(_binary()), "start", "--only", "kafka", "--host", "127.0.0.1"]
        command += ["--kafka-port", str(self.port), "--data-dir", str(self.data_dir)]
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self.data_dir / "broker.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"local broker exited with {self._process.returncode}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self.bootstrap_servers
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"local broker did not listen on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker gracefully (it saves its state), killing it if it hangs."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
