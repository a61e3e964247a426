"""Notification payloads per channel: a generic JSON webhook, Slack, PagerDuty Events API v2.

Pure logic: the incident JSON (``Incident.to_dict()``) and the app's settings in,
the JSON body to POST out. The outbox stores these bodies when an incident
changes and a worker delivers them later, so rendering must not depend on the
clock or on anything but its arguments.

Events: ``trigger`` (opened or reopened), ``update`` (escalated or changed
severity), ``acknowledge``, ``resolve``. Every channel gets the same
``dedup_key`` per incident, so a receiver folds an incident's messages into one
alert.
"""

from __future__ import annotations

import copy
from urllib.parse import quote

from aiops.kinds import Channel
from aiops.reports import report
from aiops.settings import Settings

CHANNELS = Channel.notifications()
EVENTS = ("trigger", "update", "acknowledge", "resolve")

# The setting that turns a channel on (the channel is configured when it is set and not blank).
CHANNEL_SETTINGS = {
    Channel.WEBHOOK: "webhook_url",
    Channel.SLACK: "slack_webhook_url",
    Channel.PAGERDUTY: "pagerduty_routing_key",
}
WEBHOOK_VERSION = 1  # bump when the webhook body changes incompatibly, so receivers can tell
# Left out of the webhook's incident: the anomaly list (sent as a count) and an attached report (sent once).
_WEBHOOK_DROPS = ("anomalies", "report")

# PagerDuty Events v2 limits: dedup_key and summary are rejected (400, never retried) past these.
DEDUP_KEY_MAX = 255
PAGERDUTY_SUMMARY_MAX = 1024
# Our severities -> PagerDuty's (it has no "high"/"medium"/"low"; "error"/"warning"/"info" route alike).
PAGERDUTY_SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}

# Slack attachment bar colours: severity at a glance; resolved green, acknowledged grey whatever the severity.
SEVERITY_COLOURS = {"critical": "#d00000", "high": "#ff6a00", "medium": "#f2c744", "low": "#439fe0"}
RESOLVED_COLOUR = "#2eb67d"
ACKNOWLEDGED_COLOUR = "#7a7a7a"
SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":large_blue_circle:",
}
RESOLVED_EMOJI = ":white_check_mark:"
ACKNOWLEDGED_EMOJI = ":eyes:"
# Slack Block Kit limits: longer text makes Slack reject the whole message.
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_RECOMMENDATIONS = 3  # the first few "look here first" items; the rest are on the incident page


def configured(settings: Settings) -> list[str]:
    """The channels whose setting is present and not blank, in :data:`CHANNELS` order."""
    return [channel for channel in CHANNELS if settings.text(CHANNEL_SETTINGS[channel])]


def target_url(channel: str, settings: Settings) -> str | None:
    """Where ``channel`` posts to, or None when it is not configured."""
    _check_channel(channel)
    if channel not in configured(settings):
        return None
    if channel == "pagerduty":
        return settings.text("pagerduty_url") or Settings.pagerduty_url
    return settings.text(CHANNEL_SETTINGS[channel])


def dedup_key(incident: dict) -> str:
    """The incident id, cut to PagerDuty's 255 characters: one alert per incident on every channel."""
    return str(incident["id"])[:DEDUP_KEY_MAX]


def incident_url(incident: dict, settings: Settings) -> str | None:
    """The incident page under ``AIOPS_PUBLIC_URL``, or None when no public URL is configured."""
    base = settings.text("public_url")
    if not base:
        return None
    return f"{base.rstrip('/')}/incidents/{quote(str(incident['id']), safe='')}"


def render(
    channel: str,
    event: str,
    incident: dict,
    settings: Settings,
    actor: str | None = None,
    comment: str | None = None,
) -> dict:
    """The JSON body that tells ``channel`` about ``event`` on ``incident``.

    ``actor`` and ``comment`` say who acknowledged or resolved it and why (the
    webhook and Slack show them; PagerDuty's acknowledge/resolve carry neither).
    """
    _check_channel(channel)
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    if channel == "webhook":
        return _webhook(event, incident, settings, actor, comment)
    if channel == "slack":
        return _slack(event, incident, settings, actor, comment)
    return _pagerduty(event, incident, settings)


# -- helpers -----------------------------------------------------------------------------------------


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _root(incident: dict) -> dict:
    return incident.get("root_cause") or {}


def _report(incident: dict) -> dict:
    """The report the caller attached (``aiops.notify`` adds one), else one made now."""
    attached = incident.get("report")
    if isinstance(attached, dict) and {"kind", "summary", "recommendations"} <= attached.keys():
        return attached
    return report(incident)


# -- webhook -----------------------------------------------------------------------------------------


def _webhook(event: str, incident: dict, settings: Settings, actor: str | None, comment: str | None) -> dict:
    """Everything a receiver needs but the anomaly list (it grows every cycle): we send its size."""
    body = copy.deepcopy({key: value for key, value in incident.items() if key not in _WEBHOOK_DROPS})
    body["anomaly_count"] = len(incident.get("anomalies") or [])
    return {
        "version": WEBHOOK_VERSION,
        "event": event,
        "dedup_key": dedup_key(incident),
        "incident": body,
        "report": _report(incident),
        "link": incident_url(incident, settings),
        "actor": actor,
        "comment": comment,
    }


# -- PagerDuty -------------------------------------------------------------------------------------


def _pagerduty(event: str, incident: dict, settings: Settings) -> dict:
    """Events API v2: trigger (also for updates: same dedup_key updates the alert), acknowledge, resolve."""
    base = {"routing_key": settings.text("pagerduty_routing_key")}
    if event in ("acknowledge", "resolve"):
        return {**base, "event_action": event, "dedup_key": dedup_key(incident)}
    root = _root(incident)
    rep = _report(incident)
    service = root.get("service") or "aiops"
    payload = {
        "summary": _clip(incident.get("title") or f"Incident {incident['id']}", PAGERDUTY_SUMMARY_MAX),
        "source": service,
        "severity": PAGERDUTY_SEVERITIES.get(incident.get("severity"), "error"),
        "component": root.get("endpoint") or service,
        "group": service,
        "class": rep["kind"],
        "custom_details": {
            "status": incident.get("status"),
            "affected_endpoints": incident.get("affected_endpoints") or [],
            "root_cause": root,
            "summary": rep["summary"],
            "recommendations": rep["recommendations"],
            "reopen_count": incident.get("reopen_count") or 0,
        },
    }
    if incident.get("first_detected"):
        payload["timestamp"] = incident["first_detected"]
    body = {**base, "event_action": "trigger", "dedup_key": dedup_key(incident), "payload": payload,
            "client": "aiops"}
    url = incident_url(incident, settings)
    if url:
        body["links"] = [{"href": url, "text": "Incident page"}]
        body["client_url"] = url
    return body


# -- Slack -----------------------------------------------------------------------------------------


def slack_escape(text: object) -> str:
    """Slack's three control characters as entities: telemetry must not ping ``<!channel>`` or forge links."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_clip(escaped: str, limit: int) -> str:
    """Cut already-escaped text to ``limit`` characters without leaving half an entity behind."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _slack_text(text: object, limit: int) -> str:
    return _slack_clip(slack_escape(text), limit)


def _colour(event: str, severity: str | None) -> str:
    if event == "resolve":
        return RESOLVED_COLOUR
    if event == "acknowledge":
        return ACKNOWLEDGED_COLOUR
    return SEVERITY_COLOURS.get(severity or "", ACKNOWLEDGED_COLOUR)


def _headline(event: str, incident: dict, actor: str | None) -> tuple[str, str]:
    """(emoji, what happened): "opened", "reopened", "updated", "acknowledged by alice", "resolved"."""
    by = f" by {actor}" if actor else ""
    if event == "resolve":
        return RESOLVED_EMOJI, f"resolved{by}"
    if event == "acknowledge":
        return ACKNOWLEDGED_EMOJI, f"acknowledged{by}"
    emoji = SEVERITY_EMOJI.get(incident.get("severity") or "", ":warning:")
    if event == "update":
        return emoji, "updated"
    return emoji, "reopened" if incident.get("reopen_count") else "opened"


def _slack(event: str, incident: dict, settings: Settings, actor: str | None, comment: str | None) -> dict:
    severity = str(incident.get("severity") or "unknown")
    title = incident.get("title") or ""
    root = _root(incident)
    rep = _report(incident)
    emoji, happened = _headline(event, incident, actor)
    fallback = f"{emoji} [{severity.upper()}] {incident['id']} {happened}: {title}"

    header = f"{severity.upper()}: {title}"
    if event == "update":
        header = f"Updated, now {severity.upper()}: {title}"
    elif event == "resolve":
        header = f"Resolved: {title}"
    elif event == "acknowledge":
        header = f"Acknowledged: {title}"
    root_where = "/".join(part for part in (root.get("service"), root.get("endpoint")) if part) or "unknown"
    affected = ", ".join(str(e) for e in incident.get("affected_endpoints") or []) or "none"
    fields = [
        ("Status", incident.get("status") or "unknown"),
        ("Severity", severity),
        ("Root cause", root_where),
        ("Affected endpoints", affected),
    ]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _slack_text(header, SLACK_HEADER_MAX),
                                    "emoji": False}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{name}*\n" + _slack_text(value, SLACK_FIELD_MAX - len(name) - 3)}
            for name, value in fields
        ]},
    ]
    if root.get("issue"):
        blocks.append(_section("*Issue:* ", root["issue"]))
    blocks.append(_section("*Summary:* ", rep["summary"]))
    recommendations = rep["recommendations"][:SLACK_RECOMMENDATIONS]
    if recommendations and event != "resolve":
        items = "\n".join("• " + slack_escape(r) for r in recommendations)
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": _slack_clip("*Look at first:*\n" + items, SLACK_SECTION_MAX)}})
    if actor or comment:
        who = _slack_text(actor, 200) if actor else "someone"
        note = f"{happened.split(' ')[0].capitalize()} by {who}"
        if comment:
            note += ": " + slack_escape(comment)
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _slack_clip(note, SLACK_FIELD_MAX)}]})
    url = incident_url(incident, settings)
    if url:
        blocks.append({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Open incident"},
            "url": url,
        }]})
    return {
        "text": _slack_text(fallback, SLACK_SECTION_MAX),
        "attachments": [{"color": _colour(event, incident.get("severity")), "blocks": blocks}],
    }


def _section(label: str, text: str) -> dict:
    """An mrkdwn section: our own ``label`` markup, then escaped telemetry, within Slack's limit."""
    return {"type": "section", "text": {
        "type": "mrkdwn", "text": label + _slack_text(text, SLACK_SECTION_MAX - len(label))}}
