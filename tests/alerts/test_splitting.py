"""A large alert group becomes several notifications, each one outbox message well under Kafka's 1 MB."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from streamwatch.alerts.notification import Notification, part_of
from streamwatch.alerts.routing import MAX_ALERTS_PER_NOTIFICATION, MAX_NOTIFICATION_BYTES, AlertRouter, split_alerts
from streamwatch.config.rules import AlertingConfig
from streamwatch.contract.events import AlertEvent

CONFIG = AlertingConfig(group_wait="0s")


def big_alert(i: int, status: str = "firing", reason_chars: int = 600) -> AlertEvent:
    """An alert of about 1.5 KiB of JSON, as a real drift alert with lineage, labels and links is."""
    return AlertEvent.model_validate(
        {
            "event_id": f"e{i}-{status}",
            "timestamp": 60_000,
            "fingerprint": f"fp{i:05d}",
            "rule": "feature-drift",
            "kind": "drift",
            "severity": "warning",
            "status": status,
            "model": "credit",
            "model_version": "3",
            "reason": f"feature f{i} drifted: " + "x" * reason_chars,
            "feature": f"f{i}",
            "segment": {"country": "DE", "channel": "web"},
            "metric": "psi",
            "value": 0.31,
            "threshold": 0.2,
            "window": {"start": 0, "end": 60_000},
            "starts_at": 0,
            "lineage": {"reference": "s3://bucket/reference/credit/3/profile.json", "sha256": "ab" * 32},
            "labels": {"team": "risk", "tier": "1"},
            "example_request_ids": [f"req-{i}-{k}" for k in range(5)],
            "runbook_url": "https://runbooks.example/drift",
            "dashboard_url": "https://grafana.example/d/streamwatch-model?var-model=credit&var-version=3",
        }
    )


def group_of(n: int, **options: Any) -> list[Notification]:
    router = AlertRouter({}, {"oncall": True}, CONFIG)
    router.add([big_alert(i, **options) for i in range(n)], now_ms=0)
    return router.due(0)


def test_a_5000_alert_group_is_parts_each_under_the_byte_budget_with_every_alert_once() -> None:
    parts = group_of(5_000)
    assert len(parts) > 1
    sizes = [len(p.model_dump_json().encode()) for p in parts]
    assert max(sizes) <= MAX_NOTIFICATION_BYTES < 1_000_000  # what the producer accepts (message.max.bytes)
    assert all(len(p.alerts) <= MAX_ALERTS_PER_NOTIFICATION for p in parts)
    fingerprints = [a.fingerprint for p in parts for a in p.alerts]
    assert fingerprints == [f"fp{i:05d}" for i in range(5_000)]  # each alert in exactly one part, in order
    ids = [p.notification_id for p in parts]
    assert len(set(ids)) == len(ids)
    assert [part_of(i) for i in ids] == [(k, len(parts)) for k in range(1, len(parts) + 1)]
    assert len({i.rsplit("/", 1)[0] for i in ids}) == 1  # the group's one id, and a suffix per part
    assert {(p.channel, p.group_key, p.status) for p in parts} == {(parts[0].channel, parts[0].group_key, "firing")}
    # Deterministic: the same group sent again (a restart from the checkpoint) has the same ids and parts.
    again = group_of(5_000)
    assert [(p.notification_id, len(p.alerts)) for p in again] == [(p.notification_id, len(p.alerts)) for p in parts]


def test_700_alerts_that_made_a_megabyte_message_now_make_parts_under_256_kib() -> None:
    whole = Notification(
        notification_id="x", channel="oncall", group_key="k", created_at=0, alerts=[big_alert(i) for i in range(700)]
    )
    assert len(whole.model_dump_json().encode()) > 1_000_000  # the message the producer refused
    parts = group_of(700)
    assert len(parts) >= 4 and all(len(p.model_dump_json().encode()) <= MAX_NOTIFICATION_BYTES for p in parts)


def test_an_ordinary_group_is_one_notification_with_the_id_it_always_had() -> None:
    [one] = group_of(MAX_ALERTS_PER_NOTIFICATION, reason_chars=10)
    assert len(one.alerts) == MAX_ALERTS_PER_NOTIFICATION and part_of(one.notification_id) == (1, 1)
    assert "/" not in one.notification_id and len(one.notification_id) == 32


def test_the_byte_budget_splits_before_the_count_does() -> None:
    parts = group_of(150, reason_chars=1_000)  # 150 alerts of ~2 KiB: under the count, over 256 KiB
    assert len(parts) == 2 and all(len(p.model_dump_json().encode()) <= MAX_NOTIFICATION_BYTES for p in parts)


@given(
    sizes=st.lists(st.integers(0, 1_000), max_size=60),
    max_alerts=st.integers(1, 20),
    max_bytes=st.integers(100, 20_000),
)
@example(sizes=[1_000], max_alerts=1, max_bytes=100)  # one alert bigger than the budget: a part of its own
@example(sizes=[], max_alerts=1, max_bytes=100)
def test_split_alerts_keeps_order_and_bounds(sizes: list[int], max_alerts: int, max_bytes: int) -> None:
    alerts = [big_alert(i, reason_chars=n) for i, n in enumerate(sizes)]
    runs = split_alerts(alerts, max_alerts, max_bytes)
    assert [a for run in runs for a in run] == alerts
    assert all(run for run in runs) or runs == [[]]
    for run in runs:
        assert len(run) <= max_alerts
        as_json = "[" + ",".join(a.model_dump_json() for a in run) + "]"
        assert len(as_json.encode()) <= max_bytes or len(run) == 1
