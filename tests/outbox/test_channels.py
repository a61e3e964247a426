"""Notification payloads (aiops.outbox.channels, render, slack): webhook, Slack, PagerDuty Events v2.

Pure unit tests: literal incident dicts shaped like ``Incident.to_dict()`` and
plain config dicts; nothing is sent.
"""

from __future__ import annotations

import copy
import json

import pytest

from aiops.incidents.reports import report
from aiops.outbox.channels import NOTIFIERS, notifier, notifiers, render
from aiops.outbox.render import dedup_key, incident_url
from aiops.outbox.slack import slack_escape
from aiops.settings import Settings
from tests.support.factories import FIRST, TRACE, anomaly_dict, incident_dict

CHANNELS = tuple(n.name for n in NOTIFIERS)
ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
PUBLIC = "http://aiops.example:5000"


def make_incident(severity="high", title="payment latency 1242ms (baseline 180ms)", **overrides):
    """payment slow for two cycles (the second with fewer requests), checkout slow because of it."""
    return incident_dict(
        "payment",
        anomaly_dict("payment", "latency", 1242.0, 180.0),
        anomaly_dict("checkout", "latency", 1350.0, 260.0),
        anomaly_dict("payment", "latency", 1190.0, 180.0, count=38, at="2026-01-20T10:34:15Z"),
        title=title, seen_cycles=2, severity=severity,
        trace_correlation={"trace_id": TRACE, "correlated_failures": ["payment_latency", "checkout_latency"]},
        timeline=[
            {"at": FIRST, "event": "detected", "by": "aiops",
             "detail": "payment latency 1242ms (baseline 180ms)"},
            {"at": "2026-01-20T10:31:15Z", "event": "confirmed", "by": "aiops", "detail": "seen in 2 cycles"},
        ],
        **overrides,
    )


def config(**overrides):
    base = {
        "AIOPS_WEBHOOK_URL": "https://hooks.example/aiops",
        "AIOPS_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
        "AIOPS_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "AIOPS_PAGERDUTY_URL": Settings.pagerduty_url,
        "AIOPS_PUBLIC_URL": None,
    }
    base.update(overrides)
    return Settings.load(overrides=base)


# -- configuration ---------------------------------------------------------------------------------


def configured(settings):
    """The names of the configured notification channels, in order."""
    return [n.name for n in notifiers(settings)]


def target_url(channel, settings):
    """Where a notification channel posts (None when off); ValueError for an unknown one."""
    return notifier(channel).address(settings)


def test_configured_lists_channels_with_settings_in_fixed_order():
    assert configured(config()) == ["webhook", "slack", "pagerduty"]
    assert configured(Settings.load(overrides={})) == []
    assert configured(Settings.load(overrides={"AIOPS_PAGERDUTY_ROUTING_KEY": ROUTING_KEY})) == ["pagerduty"]
    two = {"AIOPS_SLACK_WEBHOOK_URL": "https://hooks.slack.com/x", "AIOPS_WEBHOOK_URL": "http://h"}
    assert configured(Settings.load(overrides=two)) == ["webhook", "slack"]


def test_blank_or_none_settings_mean_unset():
    # An exported-but-empty environment variable must not turn a channel on.
    cfg = {"AIOPS_WEBHOOK_URL": "", "AIOPS_SLACK_WEBHOOK_URL": "   ", "AIOPS_PAGERDUTY_ROUTING_KEY": None}
    assert configured(Settings.load(overrides=cfg)) == []
    # A PagerDuty URL alone is not a configured channel: the routing key is what turns it on.
    assert configured(Settings.load(overrides={"AIOPS_PAGERDUTY_URL": Settings.pagerduty_url})) == []


def test_target_urls():
    cfg = config()
    assert target_url("webhook", cfg) == "https://hooks.example/aiops"
    assert target_url("slack", cfg) == "https://hooks.slack.com/services/T000/B000/XXXX"
    assert target_url("pagerduty", cfg) == "https://events.pagerduty.com/v2/enqueue"


def test_pagerduty_url_defaults_and_can_be_overridden():
    keyed = Settings.load(overrides={"AIOPS_PAGERDUTY_ROUTING_KEY": ROUTING_KEY})
    assert target_url("pagerduty", keyed) == Settings.pagerduty_url
    assert target_url("pagerduty", config(AIOPS_PAGERDUTY_URL="")) == Settings.pagerduty_url
    custom = config(AIOPS_PAGERDUTY_URL="https://events.eu.pagerduty.com/v2/enqueue")
    assert target_url("pagerduty", custom) == "https://events.eu.pagerduty.com/v2/enqueue"


def test_unconfigured_channel_has_no_target():
    for channel in CHANNELS:
        assert target_url(channel, Settings()) is None


def test_unknown_channel_or_event_is_an_error():
    with pytest.raises(ValueError, match="channel"):
        target_url("email", config())
    with pytest.raises(ValueError, match="channel"):
        render("email", "trigger", make_incident(), config())
    with pytest.raises(ValueError, match="event"):
        render("webhook", "escalate", make_incident(), config())


# -- shared --------------------------------------------------------------------------------------------


def test_dedup_key_is_the_incident_id_cut_to_255():
    assert dedup_key(make_incident()) == "INC-1768905015-1"
    long_id = "INC-" + "x" * 400
    assert dedup_key({"id": long_id}) == long_id[:255]
    assert len(dedup_key({"id": long_id})) == 255


def test_incident_url_only_with_public_url():
    inc = make_incident()
    assert incident_url(inc, config()) is None
    assert incident_url(inc, Settings()) is None
    assert incident_url(inc, config(AIOPS_PUBLIC_URL=PUBLIC)) == f"{PUBLIC}/incidents/INC-1768905015-1"
    assert incident_url(inc, config(AIOPS_PUBLIC_URL=PUBLIC + "/")) == f"{PUBLIC}/incidents/INC-1768905015-1"
    odd = make_incident(id="INC-1/../x?y")
    assert incident_url(odd, config(AIOPS_PUBLIC_URL=PUBLIC)) == f"{PUBLIC}/incidents/INC-1%2F..%2Fx%3Fy"


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("event", ["trigger", "update", "acknowledge", "resolve"])
def test_every_payload_is_json_and_leaves_the_incident_alone(channel, event):
    inc = make_incident()
    before = copy.deepcopy(inc)
    body = render(channel, event, inc, config(AIOPS_PUBLIC_URL=PUBLIC), actor="alice", comment="on it")
    assert json.loads(json.dumps(body)) == body
    assert inc == before


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("event", ["trigger", "acknowledge"])
def test_the_outbox_stores_what_the_receiver_gets_but_the_routing_key(channel, event):
    # The key is a secret: the row keeps the body without it, and the send adds the configured one.
    stored = notifier(channel).stored(event, make_incident(), config(AIOPS_PUBLIC_URL=PUBLIC))
    assert "routing_key" not in stored
    sent = render(channel, event, make_incident(), config(AIOPS_PUBLIC_URL=PUBLIC))
    assert sent == ({**stored, "routing_key": ROUTING_KEY} if channel == "pagerduty" else stored)


# -- webhook ---------------------------------------------------------------------------------------


def test_webhook_body_drops_anomalies_counts_them_and_keeps_the_timeline():
    inc = make_incident()
    body = render("webhook", "trigger", inc, config())
    assert set(body) == {"version", "event", "dedup_key", "incident", "report", "link", "actor", "comment"}
    assert body["version"] == 1
    assert body["event"] == "trigger"
    assert body["dedup_key"] == "INC-1768905015-1"
    assert "anomalies" not in body["incident"]
    assert body["incident"]["anomaly_count"] == 3
    assert body["incident"]["timeline"] == inc["timeline"]
    assert body["incident"]["root_cause"] == inc["root_cause"]
    expected = {k: v for k, v in inc.items() if k != "anomalies"} | {"anomaly_count": 3}
    assert body["incident"] == expected
    assert body["report"] == report(inc)
    assert body["link"] is None
    assert body["actor"] is None and body["comment"] is None


def test_webhook_link_actor_and_comment():
    body = render("webhook", "resolve", make_incident(status="resolved"), config(AIOPS_PUBLIC_URL=PUBLIC),
                  actor="alice", comment="rolled back 1.4.2")
    assert body["event"] == "resolve"
    assert body["link"] == f"{PUBLIC}/incidents/INC-1768905015-1"
    assert body["actor"] == "alice"
    assert body["comment"] == "rolled back 1.4.2"


def test_webhook_without_anomalies():
    body = render("webhook", "trigger", make_incident(anomalies=[]), config())
    assert body["incident"]["anomaly_count"] == 0
    assert body["report"]["kind"] == "unknown"


# -- PagerDuty ------------------------------------------------------------------------------------


def test_pagerduty_trigger_shape():
    inc = make_incident()
    body = render("pagerduty", "trigger", inc, config())
    assert set(body) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "INC-1768905015-1"
    assert body["client"] == "aiops"
    payload = body["payload"]
    assert set(payload) == {"summary", "source", "severity", "component", "group", "class", "timestamp",
                            "custom_details"}
    assert payload["summary"] == "payment latency 1242ms (baseline 180ms)"
    assert payload["source"] == "shop"
    assert payload["severity"] == "error"
    assert payload["component"] == "payment"
    assert payload["group"] == "shop"
    assert payload["class"] == "latency"
    assert payload["timestamp"] == "2026-01-20T10:30:15Z"
    rep = report(inc)
    assert payload["custom_details"] == {
        "status": "open",
        "affected_endpoints": ["payment", "checkout"],
        "root_cause": inc["root_cause"],
        "summary": rep["summary"],
        "recommendations": rep["recommendations"],
        "reopen_count": 0,
    }


def test_pagerduty_links_only_with_public_url():
    body = render("pagerduty", "trigger", make_incident(), config(AIOPS_PUBLIC_URL=PUBLIC + "/"))
    url = f"{PUBLIC}/incidents/INC-1768905015-1"
    assert body["links"] == [{"href": url, "text": "Incident page"}]
    assert body["client_url"] == url
    plain = render("pagerduty", "trigger", make_incident(), config())
    assert "links" not in plain and "client_url" not in plain


def test_pagerduty_update_retriggers_the_same_alert():
    trigger = render("pagerduty", "trigger", make_incident(), config())
    update = render("pagerduty", "update", make_incident(severity="critical"), config())
    assert update["event_action"] == "trigger"
    assert update["dedup_key"] == trigger["dedup_key"]
    assert update["payload"]["severity"] == "critical"


@pytest.mark.parametrize(("ours", "theirs"), [
    ("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info"),
])
def test_pagerduty_severity_mapping(ours, theirs):
    body = render("pagerduty", "trigger", make_incident(severity=ours), config())
    assert body["payload"]["severity"] == theirs


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_carry_only_the_key(event):
    body = render("pagerduty", event, make_incident(status="resolved"), config(AIOPS_PUBLIC_URL=PUBLIC),
                  actor="alice", comment="done")
    assert body == {"routing_key": ROUTING_KEY, "event_action": event, "dedup_key": "INC-1768905015-1"}


def test_pagerduty_limits_dedup_key_and_summary():
    long_id = "INC-" + "9" * 300
    body = render("pagerduty", "trigger", make_incident(id=long_id, title="slow " * 400), config())
    assert body["dedup_key"] == long_id[:255]
    assert len(body["payload"]["summary"]) == 1024
    assert body["payload"]["summary"].startswith("slow slow")
    resolve = render("pagerduty", "resolve", make_incident(id=long_id), config())
    assert resolve["dedup_key"] == long_id[:255]


def test_pagerduty_cascading_class():
    inc = make_incident()
    inc["anomalies"].append({"service": "shop", "endpoint": "checkout", "type": "error", "observed": 0.4,
                             "baseline": 0.0, "request_count": 40, "message": "Error spike: 40% of 40",
                             "detected_at": "2026-01-20T10:34:15Z", "trace_ids": []})
    assert render("pagerduty", "trigger", inc, config())["payload"]["class"] == "cascading"


# -- Slack ----------------------------------------------------------------------------------------


def texts(node):
    """Every string a Slack client renders: values under ``text`` keys, recursively."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def blocks(body):
    (attachment,) = body["attachments"]
    return attachment["blocks"]


@pytest.mark.parametrize(("severity", "colour"), [
    ("critical", "#d00000"), ("high", "#ff6a00"), ("medium", "#f2c744"), ("low", "#439fe0"),
])
def test_slack_colour_follows_severity(severity, colour):
    for event in ("trigger", "update"):
        body = render("slack", event, make_incident(severity=severity), config())
        assert body["attachments"][0]["color"] == colour


def test_slack_resolved_is_green_and_acknowledged_grey_whatever_the_severity():
    inc = make_incident(severity="critical")
    assert render("slack", "resolve", inc, config())["attachments"][0]["color"] == "#2eb67d"
    assert render("slack", "acknowledge", inc, config())["attachments"][0]["color"] == "#7a7a7a"


def test_slack_fallback_text():
    inc = make_incident(severity="critical")
    body = render("slack", "trigger", inc, config())
    assert body["text"] == (":red_circle: [CRITICAL] INC-1768905015-1 opened: "
                            "payment latency 1242ms (baseline 180ms)")
    assert "reopened:" in render("slack", "trigger", make_incident(reopen_count=1), config())["text"]
    assert "updated:" in render("slack", "update", inc, config())["text"]
    ack = render("slack", "acknowledge", inc, config(), actor="alice")["text"]
    assert ack.startswith(":eyes: [CRITICAL] INC-1768905015-1 acknowledged by alice:")
    assert render("slack", "resolve", inc, config())["text"].startswith(":white_check_mark: ")


def test_slack_blocks_carry_the_facts_summary_and_first_steps():
    inc = make_incident()
    body = render("slack", "trigger", inc, config())
    bl = blocks(body)
    assert bl[0]["type"] == "header"
    assert bl[0]["text"] == {"type": "plain_text", "text": "HIGH: payment latency 1242ms (baseline 180ms)",
                             "emoji": False}
    everything = "\n".join(texts(bl))
    assert "*Status*\nopen" in everything
    assert "*Severity*\nhigh" in everything
    assert "*Root cause*\nshop/payment" in everything
    assert "*Affected endpoints*\npayment, checkout" in everything
    assert "Latency spike: 1242ms (baseline: 180ms)" in everything
    rep = report(inc)
    assert slack_escape(rep["summary"]) in everything
    assert slack_escape(rep["recommendations"][0]) in everything
    assert slack_escape(rep["recommendations"][3]) not in everything  # the first few only
    assert not any(b["type"] == "actions" for b in bl)
    assert "http" not in everything


def test_slack_link_button_only_with_public_url():
    bl = blocks(render("slack", "trigger", make_incident(), config(AIOPS_PUBLIC_URL=PUBLIC)))
    (actions,) = [b for b in bl if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["type"] == "button"
    assert button["url"] == f"{PUBLIC}/incidents/INC-1768905015-1"


def test_slack_acknowledge_shows_who_and_why():
    bl = blocks(render("slack", "acknowledge", make_incident(status="acknowledged"), config(),
                       actor="alice", comment="looking at the pool <size>"))
    (context,) = [b for b in bl if b["type"] == "context"]
    assert context["elements"][0]["text"] == "Acknowledged by alice: looking at the pool &lt;size&gt;"
    assert bl[0]["text"]["text"].startswith("Acknowledged: ")


def test_slack_resolve_skips_the_to_do_list():
    bl = blocks(render("slack", "resolve", make_incident(status="resolved"), config()))
    assert not any("Look at first" in t for t in texts(bl))
    assert bl[0]["text"]["text"].startswith("Resolved: ")


def test_slack_escapes_a_hostile_title_everywhere():
    hostile = "<!channel> & <script>alert(1)</script> <https://evil.example|click>"
    inc = make_incident(title=hostile, affected_endpoints=["<!here>", "checkout"])
    inc["root_cause"] = {"service": "shop<&>", "endpoint": "<@U123>", "issue": hostile}
    inc["anomalies"][0]["endpoint"] = "<@U123>"
    inc["anomalies"][0]["service"] = "shop<&>"
    body = render("slack", "trigger", inc, config(AIOPS_PUBLIC_URL=PUBLIC), actor="<!everyone>",
                  comment="<!channel>")
    rendered = [body["text"], *texts(body["attachments"])]
    for text in rendered:
        assert "<" not in text and ">" not in text, text
        # every & is one of our entities, never a raw one
        assert text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0, text
    assert "&lt;!channel&gt; &amp; &lt;script&gt;" in body["text"]
    assert blocks(body)[0]["text"]["text"].startswith("HIGH: &lt;!channel&gt; &amp; &lt;script&gt;")


def test_slack_keeps_within_block_limits_without_cutting_an_entity():
    title = "<" * 400
    issue = "&" * 5000
    inc = make_incident(title=title)
    inc["root_cause"]["issue"] = issue
    body = render("slack", "trigger", inc, config())
    bl = blocks(body)
    header = bl[0]["text"]["text"]
    assert len(header) <= 150
    assert header.endswith("&lt;…")  # whole entities, then the ellipsis
    for block in bl:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
    (issue_text,) = [t for t in texts(bl) if t.startswith("*Issue:* ")]
    assert len(issue_text) == 3000
    assert issue_text == "*Issue:* " + "&amp;" * ((3000 - len("*Issue:* ") - 1) // 5) + "…"
    assert len(body["text"]) <= 3000


@pytest.mark.parametrize("channel", ["webhook", "slack", "pagerduty"])
def test_a_report_attached_to_the_incident_is_used_not_recomputed(channel):
    # aiops.outbox.enqueue attaches the report it stored; every channel must tell the same story.
    inc = make_incident()
    inc["report"] = {"kind": "errors", "summary": "Attached summary.", "recommendations": ["Attached step."]}
    body = render(channel, "trigger", inc, config())
    if channel == "webhook":
        assert body["report"] == inc["report"]
        assert "report" not in body["incident"]  # once, at the top level
    elif channel == "pagerduty":
        assert body["payload"]["class"] == "errors"
        assert body["payload"]["custom_details"]["summary"] == "Attached summary."
    else:
        assert "Attached summary." in "\n".join(texts(blocks(body)))
