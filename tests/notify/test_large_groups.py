"""A 5,000-alert group: every channel's payload stays within its receiver's documented limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamwatch.alerts.notification import Notification
from streamwatch.alerts.routing import MAX_NOTIFICATION_BYTES
from streamwatch.notify.payloads import (
    ALERTMANAGER_MAX_ALERTS_PER_POST,
    ALERTMANAGER_MAX_BODY_BYTES,
    PAGERDUTY_MAX_EVENT_BYTES,
    PAGERDUTY_MAX_SUMMARY_CHARS,
    SLACK_MAX_BLOCKS,
    SLACK_MAX_BLOCKS_TEXT_CHARS,
    SLACK_MAX_TEXT_CHARS,
    WEBHOOK_MAX_BODY_BYTES,
    alertmanager_alerts,
    alertmanager_batches,
    pagerduty_events,
    slack_message,
    verify_webhook,
    webhook_request,
)
from tests.alerts.test_splitting import big_alert, group_of

N = 5_000


@pytest.fixture(scope="module")
def parts() -> list[Notification]:
    return group_of(N)


@pytest.fixture(scope="module")
def whole() -> Notification:
    """The group as one notification, as the router made it before it split: what a payload must survive too."""
    alerts = [big_alert(i) for i in range(N - 100)] + [big_alert(i, "resolved") for i in range(N - 100, N)]
    return Notification(notification_id="whole", channel="oncall", group_key="k", created_at=0, alerts=alerts)


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def block_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for block in body["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", [])]
    return texts


def check_slack(body: dict[str, Any], alerts: int) -> int:
    """The message is within Slack's limits; returns how many alerts it says it left out."""
    assert len(body["text"]) <= SLACK_MAX_TEXT_CHARS
    assert len(body["blocks"]) < SLACK_MAX_BLOCKS
    assert sum(len(t) for t in block_texts(body)) <= SLACK_MAX_BLOCKS_TEXT_CHARS
    sections = sum(b["type"] == "section" for b in body["blocks"])
    more = [t for t in block_texts(body) if "more alerts not listed" in t]
    left_out = int(more[0].split("and ")[1].split(" ")[0]) if more else 0
    assert sections + left_out == alerts
    return left_out


def test_every_part_fits_every_channel(parts: list[Notification]) -> None:
    for part in parts:
        assert len(part.model_dump_json().encode()) <= MAX_NOTIFICATION_BYTES
        assert check_slack(slack_message(part), len(part.alerts)) > 0
        assert "(part " in slack_message(part)["blocks"][0]["text"]["text"]
        events = pagerduty_events(part, "k" * 32)
        assert len(events) == len(part.alerts)
        assert all(size(e) <= PAGERDUTY_MAX_EVENT_BYTES for e in events)
        assert all(len(e["payload"]["summary"]) <= PAGERDUTY_MAX_SUMMARY_CHARS for e in events if "payload" in e)
        alerts = alertmanager_alerts(part)
        assert len(alerts) <= ALERTMANAGER_MAX_ALERTS_PER_POST and size(alerts) <= ALERTMANAGER_MAX_BODY_BYTES
        assert alertmanager_batches(part) == [alerts]  # a part is one Alertmanager request
        body, headers = webhook_request(part, "s3cret", 1_800_000_000)
        assert len(body) <= WEBHOOK_MAX_BODY_BYTES and "X-Streamwatch-Omitted-Alerts" not in headers


def test_one_unsplit_notification_is_still_summarised_under_every_limit(whole: Notification) -> None:
    assert len(whole.model_dump_json().encode()) > 5 * WEBHOOK_MAX_BODY_BYTES
    body = slack_message(whole)
    left_out = check_slack(body, N)
    assert left_out >= N - 10
    assert any(
        f"… and {left_out} more alerts not listed ({left_out - 100} firing, 100 resolved)" == t
        for t in block_texts(body)
    )

    raw, headers = webhook_request(whole, "s3cret", 1_800_000_000)
    assert len(raw) <= WEBHOOK_MAX_BODY_BYTES
    kept = Notification.model_validate_json(raw)  # still the contract
    omitted = int(headers["X-Streamwatch-Omitted-Alerts"])
    assert omitted > 0 and len(kept.alerts) + omitted == N
    assert kept.alerts == whole.alerts[: len(kept.alerts)] and kept.notification_id == "whole"
    stamp, signature = headers["X-Streamwatch-Timestamp"], headers["X-Streamwatch-Signature"]
    assert verify_webhook("s3cret", raw, stamp, signature, now_s=1_800_000_000)

    batches = alertmanager_batches(whole)
    assert [a for batch in batches for a in batch] == alertmanager_alerts(whole)  # each alert in one request
    assert all(len(b) <= ALERTMANAGER_MAX_ALERTS_PER_POST and size(b) <= ALERTMANAGER_MAX_BODY_BYTES for b in batches)


def test_a_pagerduty_event_over_512_kb_drops_its_largest_details_first() -> None:
    alert = big_alert(1)
    # Bigger than the contract lets a producer make it (model_construct skips validation): the payload must cope.
    huge = alert.model_copy(update={"lineage": {f"k{i}": "v" * 10_000 for i in range(60)}})
    [event] = pagerduty_events(
        Notification.model_construct(
            notification_id="n", channel="pd", group_key="k", created_at=alert.starts_at, alerts=[huge], status="firing"
        ),
        "k" * 32,
    )
    assert size(event) <= PAGERDUTY_MAX_EVENT_BYTES
    details = event["payload"]["custom_details"]
    assert details["omitted"] == ["lineage"] and details["labels"] == {"team": "risk", "tier": "1"}


def test_an_ordinary_notification_is_sent_as_before() -> None:
    alerts = [big_alert(i) for i in range(3)]
    n = Notification(notification_id="n1", channel="oncall", group_key="k", created_at=0, alerts=alerts)
    body = slack_message(n)
    assert not any("more alerts" in t for t in block_texts(body)) and "(part" not in body["text"]
    assert block_texts(body)[-1] == "streamwatch · n1"
    raw, headers = webhook_request(n, "s", 1)
    assert raw == n.model_dump_json().encode() and "X-Streamwatch-Omitted-Alerts" not in headers
    assert [e["payload"]["custom_details"].get("omitted") for e in pagerduty_events(n, "k")] == [None] * 3
