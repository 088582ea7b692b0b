"""The pure payloads: webhook verification never raises, and nothing a producer sends can ping or link in Slack."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamwatch.alerts.notification import Notification
from streamwatch.contract.events import AlertEvent
from streamwatch.notify.payloads import escape_mrkdwn, slack_message, verify_webhook, webhook_request

NOW = 1_800_000_000

anything = st.one_of(st.none(), st.text(), st.binary())
numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))


def sign(secret: bytes, stamp: bytes, body: bytes) -> str:
    return "v1=" + hmac.new(secret, stamp + b"." + body, hashlib.sha256).hexdigest()


@given(
    secret=anything,
    body=anything,
    timestamp=st.one_of(anything, st.integers(0, 10**20).map(str)),
    signature=anything,
    now_s=st.one_of(numbers, anything),
    tolerance_s=st.one_of(numbers, anything),
)
def test_verify_webhook_never_raises_whatever_it_is_given(
    secret: Any, body: Any, timestamp: Any, signature: Any, now_s: Any, tolerance_s: Any
) -> None:
    assert verify_webhook(secret, body, timestamp, signature, now_s, tolerance_s) in (True, False)


@given(
    secret=st.text(min_size=1),
    body=st.binary(),
    skew=st.integers(-300, 300),
    signature=st.one_of(st.none(), st.text(), st.binary()),
)
def test_only_the_right_signature_verifies_given_as_str_or_bytes(
    secret: str, body: bytes, skew: int, signature: str | bytes | None
) -> None:
    secret = secret.encode("utf-8", "replace").decode()  # a lone surrogate cannot be a configured secret
    stamp = str(NOW + skew)
    good = sign(secret.encode(), stamp.encode(), body)
    assert verify_webhook(secret, body, stamp, good, NOW)
    assert verify_webhook(secret.encode(), body, stamp.encode(), good.encode(), NOW)
    assert verify_webhook(secret, body, stamp, signature, NOW) == (signature in (good, good.encode()))
    assert not verify_webhook(secret, body + b"x", stamp, good, NOW)
    assert not verify_webhook(secret, body, stamp, good, NOW + 301 + max(skew, 0))  # replayed later
    assert not verify_webhook(secret, body, stamp, good, float("nan"))


def test_verify_webhook_refuses_what_used_to_raise_or_slip_through() -> None:
    body, stamp = b"{}", str(NOW)
    good = sign(b"k", stamp.encode(), body)
    assert verify_webhook("k", body, stamp, good, NOW)
    for timestamp in (None, "", "١٨٠٠٠٠٠٠٠٠", f" {stamp}", "1_800_000_000", "-1", "9" * 400, "1.8e9"):
        assert not verify_webhook("k", body, timestamp, good, NOW), timestamp
    for signature in (None, "", "v1=é", good + "é", good.upper(), "\ud800"):
        assert not verify_webhook("k", body, stamp, signature, NOW), signature
    for secret in (None, "", b"", "\ud800"):
        assert not verify_webhook(secret, body, stamp, good, NOW)
    assert not verify_webhook("k", None, stamp, good, NOW)
    assert not verify_webhook("k", body, stamp, good, float("inf"))
    assert not verify_webhook("k", body, stamp, good, NOW, tolerance_s=float("nan"))


def test_webhook_request_signs_what_verify_webhook_accepts() -> None:
    n = Notification(notification_id="n1", channel="hooks", group_key="k", created_at=0, alerts=[])
    body, headers = webhook_request(n, "sëcret", timestamp_s=NOW)
    stamp, signature = headers["X-Streamwatch-Timestamp"], headers["X-Streamwatch-Signature"]
    assert verify_webhook("sëcret", body, stamp, signature, NOW)
    assert verify_webhook("sëcret".encode(), body.decode(), stamp.encode(), signature.encode(), NOW)


# --- Slack ---------------------------------------------------------------------------------------

ALLOWED_LINK = re.compile(r"<https?://[^<>|]*\|(?:Runbook|Dashboard)>")
ENTITY = re.compile(r"&(?:amp|lt|gt);")


def alert(**fields: Any) -> AlertEvent:
    base: dict[str, Any] = {
        "event_id": "e1",
        "timestamp": 60_000,
        "fingerprint": "fp1",
        "rule": "psi",
        "kind": "drift",
        "severity": "critical",
        "status": "firing",
        "model": "credit",
        "model_version": "3",
        "reason": "drifted",
        "starts_at": 0,
    }
    return AlertEvent.model_validate(base | fields)


def message(*alerts: AlertEvent, notification_id: str = "n1") -> dict[str, Any]:
    return slack_message(
        Notification(notification_id=notification_id, channel="slack", group_key="k", created_at=0, alerts=list(alerts))
    )


def mrkdwn_texts(body: dict[str, Any]) -> list[str]:
    """Every string of ``body`` that Slack parses as mrkdwn: the top-level text, sections, context elements."""
    texts = [body["text"]]
    for block in body["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def assert_inert(text: str) -> None:
    """No mention, link or half an entity: every ``<`` opens one of our links, every ``&`` an entity."""
    rest = ALLOWED_LINK.sub("", text)
    assert "<" not in rest and ">" not in rest, text
    assert ENTITY.sub("", rest).count("&") == 0, text


def test_producer_strings_cannot_ping_link_or_break_the_markup() -> None:
    body = message(
        alert(
            rule="<!everyone>",
            model="<!channel>",
            model_version="<https://evil.example|click>",
            feature="*bold* & <@U123>",
            segment={"<#C999>": "<!here>", "region": "a&b"},
            reason="<!subteam^S1> drifted",
            metric="<mailto:x@y|m>",
            value=0.4,
            example_request_ids=["`r1<!channel>`"],
            runbook_url="!channel",
            dashboard_url="https://grafana.example/d/x?a=1&b=<2>|evil",
        ),
        notification_id="<!here>",
    )
    texts = mrkdwn_texts(body)
    for text in texts:
        assert_inert(text)
    joined = "\n".join(texts)
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<https://evil", "<@U123>", "<#C999>", "<!subteam", "<mailto"):
        assert raw not in joined
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; (production)" in joined
    assert "feature *bold* &amp; &lt;@U123&gt;" in joined
    assert "slice &lt;#C999&gt;=&lt;!here&gt;, region=a&amp;b" in joined
    assert "Runbook: !channel" in joined  # not a link: not an http(s) URL
    assert "<https://grafana.example/d/x?a=1&amp;b=&lt;2&gt;%7Cevil|Dashboard>" in joined
    assert "`'r1&lt;!channel&gt;'`" in joined
    assert all(b["text"]["verbatim"] for b in body["blocks"] if b.get("text", {}).get("type") == "mrkdwn")
    assert body["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "[FIRING:1] <!everyone> · <!channel> <https://evil.example|click> production",
    }  # plain_text: not parsed


tricky = st.text(alphabet="<>&|!@#*_~`:/ab;", min_size=1, max_size=60)


@given(
    model=tricky,
    feature=tricky,
    segment=st.dictionaries(tricky, st.text(alphabet="<>&|!@#;a", max_size=60), max_size=4),
    reason=st.text(alphabet="<>&;a", max_size=1024),
    runbook=st.one_of(st.none(), tricky.map(lambda s: "https://x/" + s), tricky),
)
def test_every_mrkdwn_text_is_inert_and_within_slacks_limits(
    model: str, feature: str, segment: dict[str, str], reason: str, runbook: str | None
) -> None:
    body = message(
        alert(model=model, feature=feature, segment=segment, reason=reason or "r", runbook_url=runbook),
        notification_id=model,
    )
    for text in mrkdwn_texts(body):
        assert_inert(text)
    assert all(len(b["text"]["text"]) <= 3000 for b in body["blocks"] if b["type"] == "section")


def test_a_cut_section_ends_neither_inside_an_entity_nor_inside_a_link() -> None:
    body = message(alert(reason="<" * 1024, model="&" * 128, runbook_url="https://runbooks.example/" + "a" * 900))
    [section] = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert len(section) <= 3000 and section.endswith("…")
    assert_inert(section)


def test_escape_mrkdwn_is_slacks_three_entities() -> None:
    assert escape_mrkdwn("a & b < c > d *e*") == "a &amp; b &lt; c &gt; d *e*"
    assert escape_mrkdwn("&amp;") == "&amp;amp;"  # escaped again: shown as typed
