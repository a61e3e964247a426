"""The body of each channel's message: a generic JSON webhook, Slack (:mod:`aiops.outbox.slack`),
PagerDuty Events API v2.

Pure logic: the incident JSON (``Incident.to_dict()``) and the app's settings in,
the JSON body the outbox stores out. The outbox stores these bodies when an
incident changes and a worker delivers them later, so rendering must not depend
on the clock or on anything but its arguments. Secrets are not rendered: what
only the send adds (PagerDuty's routing key) is :mod:`aiops.outbox.channels`'
to add, and each channel's renderer is named there.

Events: ``trigger`` (opened or reopened), ``update`` (escalated or changed
severity), ``acknowledge``, ``resolve``. Every channel gets the same
``dedup_key`` per incident, so a receiver folds an incident's messages into one
alert.
"""

from __future__ import annotations

import copy
from urllib.parse import quote

from aiops.incidents.reports import report
from aiops.outbox import slack
from aiops.settings import Settings

EVENTS = ("trigger", "update", "acknowledge", "resolve")

WEBHOOK_VERSION = 1  # bump when the webhook body changes incompatibly, so receivers can tell
# Left out of the webhook's incident: the anomaly list (sent as a count) and an attached report (sent once).
_WEBHOOK_DROPS = ("anomalies", "report")

# PagerDuty Events v2 limits: dedup_key and summary are rejected (400, never retried) past these.
DEDUP_KEY_MAX = 255
PAGERDUTY_SUMMARY_MAX = 1024
# Our severities -> PagerDuty's (it has no "high"/"medium"/"low"; "error"/"warning"/"info" route alike).
PAGERDUTY_SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def dedup_key(incident: dict) -> str:
    """The incident id, cut to PagerDuty's 255 characters: one alert per incident on every channel."""
    return str(incident["id"])[:DEDUP_KEY_MAX]


def incident_url(incident: dict, settings: Settings) -> str | None:
    """The incident page under ``AIOPS_PUBLIC_URL``, or None when no public URL is configured."""
    base = settings.text("public_url")
    if not base:
        return None
    return f"{base.rstrip('/')}/incidents/{quote(str(incident['id']), safe='')}"


# -- helpers -----------------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _root(incident: dict) -> dict:
    return incident.get("root_cause") or {}


def _report(incident: dict) -> dict:
    """The report the caller attached (:mod:`aiops.outbox.enqueue` adds one), else one made now."""
    attached = incident.get("report")
    if isinstance(attached, dict) and {"kind", "summary", "recommendations"} <= attached.keys():
        return attached
    return report(incident)


# -- webhook -----------------------------------------------------------------------------------------


def webhook_body(event: str, incident: dict, settings: Settings, actor: str | None = None,
                 comment: str | None = None) -> dict:
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


# -- Slack -----------------------------------------------------------------------------------------


def slack_body(event: str, incident: dict, settings: Settings, actor: str | None = None,
               comment: str | None = None) -> dict:
    """Block Kit (:mod:`aiops.outbox.slack`), with the incident's report and a link to its page."""
    return slack.message(event, incident, _report(incident), incident_url(incident, settings), actor, comment)


# -- PagerDuty -------------------------------------------------------------------------------------


def pagerduty_body(event: str, incident: dict, settings: Settings, actor: str | None = None,
                   comment: str | None = None) -> dict:
    """Events API v2: trigger (also for updates: same dedup_key updates the alert), acknowledge, resolve.

    PagerDuty's acknowledge and resolve carry no actor or comment. The routing key is not here:
    it is a secret, added when the row is sent (:class:`aiops.outbox.channels.Notifier`).
    """
    if event in ("acknowledge", "resolve"):
        return {"event_action": event, "dedup_key": dedup_key(incident)}
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
    body = {"event_action": "trigger", "dedup_key": dedup_key(incident), "payload": payload,
            "client": "aiops"}
    url = incident_url(incident, settings)
    if url:
        body["links"] = [{"href": url, "text": "Incident page"}]
        body["client_url"] = url
    return body
