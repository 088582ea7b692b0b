"""ChannelClient against a real local HTTP server: each channel's request, failure classes, no secret leaks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from streamwatch.adapters.http import HttpClient
from streamwatch.config.models import AlertmanagerChannel, PagerDutyChannel, SlackChannel, WebhookChannel
from streamwatch.notify.channels import ChannelClient, DeliveryError
from streamwatch.notify.payloads import verify_webhook
from tests.notify.test_dispatcher import notification
from tests.receivers import RecordingReceiver

SLACK_PATH = "/services/T000SECRETPATH/B000/XXXXXXXX"
ROUTING_KEY = "R0UTINGKEYSECRET"
SIGNING = "S1GNINGSECRET"


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


def channels(url: str) -> dict[str, object]:
    return {
        "slack": SlackChannel(name="slack", type="slack", webhook_url=url + SLACK_PATH),
        "pager": PagerDutyChannel(
            name="pager", type="pagerduty", routing_key=ROUTING_KEY, events_url=url + "/v2/enqueue"
        ),
        "hook": WebhookChannel(name="hook", type="webhook", url=url + "/hook/T0KENINPATH", signing_secret=SIGNING),
        "am": AlertmanagerChannel(name="am", type="alertmanager", url=url),
    }


def test_each_channel_type_sends_its_own_request(receiver: RecordingReceiver) -> None:
    chosen = channels(receiver.url)
    with ChannelClient(timeout_s=2.0) as client:
        for name in ("slack", "pager", "hook", "am"):
            client.send(chosen[name], notification(1, name))
        client.send(chosen["pager"], notification(1, "pager", "resolved"))
    by_path = {path: (headers, body) for _, path, headers, body in receiver.requests}
    slack = orjson.loads(by_path[SLACK_PATH][1])
    assert slack["text"].startswith("[FIRING:1] psi") and slack["blocks"][0]["type"] == "header"
    assert any("fp1 drifted" in b.get("text", {}).get("text", "") for b in slack["blocks"])
    pages = [orjson.loads(b) for _, p, _, b in receiver.requests if p == "/v2/enqueue"]
    assert [(p["event_action"], p["dedup_key"]) for p in pages] == [("trigger", "fp1"), ("resolve", "fp1")]
    assert (
        pages[0]["payload"]["severity"] == "critical"
        and pages[0]["payload"]["source"] == "streamwatch/credit/3/production"
    )
    headers, body = by_path["/hook/T0KENINPATH"]
    assert orjson.loads(body)["notification_id"] == "n1-hook-firing"
    assert verify_webhook(
        SIGNING, body, headers["X-Streamwatch-Timestamp"], headers["X-Streamwatch-Signature"], time.time()
    )
    [posted] = orjson.loads(by_path["/api/v2/alerts"][1])
    assert posted["labels"]["alertname"] == "psi" and posted["endsAt"] == "1970-01-01T05:01:00Z"  # sent + 5 h


def test_failures_are_classified_and_carry_retry_after(receiver: RecordingReceiver) -> None:
    hook = channels(receiver.url)["hook"]
    with ChannelClient(timeout_s=0.5) as client:
        for status, headers, retryable, after in [
            (503, {}, True, None),
            (429, {"Retry-After": "3"}, True, 3.0),
            (400, {}, False, None),
            (404, {}, False, None),
        ]:
            receiver.fail_next(1, status=status, headers=headers)
            with pytest.raises(DeliveryError) as caught:
                client.send(hook, notification(2, "hook"))
            assert (caught.value.status, caught.value.retryable, caught.value.retry_after_s) == (
                status,
                retryable,
                after,
            )
        receiver.delay_next(1, 1.5)
        with pytest.raises(DeliveryError, match="timed out") as slow:
            client.send(hook, notification(3, "hook"))
        assert slow.value.retryable
    with ChannelClient(timeout_s=0.5) as client, pytest.raises(DeliveryError, match="unreachable") as down:
        client.send(channels("http://127.0.0.1:9")["hook"], notification(4, "hook"))
    assert down.value.retryable


def test_a_channel_that_skips_resolutions_sends_nothing_for_them(receiver: RecordingReceiver) -> None:
    quiet = SlackChannel(name="slack", type="slack", webhook_url=receiver.url + SLACK_PATH, send_resolved=False)
    with ChannelClient() as client:
        client.send(quiet, notification(5, "slack", "resolved"))
    assert receiver.attempts == []


def test_no_secret_reaches_an_error_or_a_log(receiver: RecordingReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chosen = channels(receiver.url)
    messages = []
    with ChannelClient(timeout_s=0.5) as client:
        for name in ("slack", "pager", "hook"):
            client.send(chosen[name], notification(6, name))  # accepted: httpx would log the URL at INFO
            receiver.fail_next(1, status=500)
            with pytest.raises(DeliveryError) as caught:
                client.send(chosen[name], notification(7, name))
            messages.append(str(caught.value))
    text = "\n".join(messages) + caplog.text
    for secret in ("T000SECRETPATH", ROUTING_KEY, SIGNING, "T0KENINPATH"):
        assert secret not in text
    assert "answered 500" in messages[0] and "127.0.0.1" in messages[0]


def test_the_transport_is_injected() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(202)

    with ChannelClient(HttpClient(transport=httpx.MockTransport(handler))) as client:
        client.send(channels("http://example.invalid")["am"], notification(8, "am"))
    assert seen == ["/api/v2/alerts"]
