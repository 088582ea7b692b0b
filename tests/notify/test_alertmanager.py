"""A real Alertmanager (Debian's prometheus-alertmanager on 127.0.0.1) receives and lists our alerts."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from streamwatch.adapters.localbroker import free_port
from streamwatch.config.models import AlertmanagerChannel
from streamwatch.notify.channels import ChannelClient
from tests.notify.test_dispatcher import notification

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CONFIG = """
route:
  receiver: nobody
  group_wait: 1h
receivers:
  - name: nobody
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed (make test installs it with apt-get as root)")
    (tmp_path / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def listed(url: str) -> list[dict]:  # type: ignore[type-arg]
    return httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=5.0).json()


def test_alertmanager_lists_our_alert_and_drops_it_once_resolved(alertmanager: str) -> None:
    channel = AlertmanagerChannel(name="am", type="alertmanager", url=alertmanager)
    with ChannelClient() as client:
        now = datetime.now(UTC)
        client.send(channel, notification(1, "am").model_copy(update={"created_at": now}))
        [alert] = listed(alertmanager)
        assert alert["labels"]["alertname"] == "psi" and alert["labels"]["fingerprint"] == "fp1"
        assert alert["labels"]["model"] == "credit" and alert["annotations"]["summary"] == "fp1 drifted"
        assert alert["status"]["state"] == "active"
        client.send(channel, notification(1, "am", "resolved"))
    deadline = time.monotonic() + 10
    while listed(alertmanager) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listed(alertmanager) == []
