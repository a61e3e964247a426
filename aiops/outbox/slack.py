"""The Slack message for an incident event: Block Kit, escaped and within Slack's limits.

Pure logic, like :mod:`aiops.outbox.render` that calls it: the incident JSON,
its report and its page's URL in, the body to POST out. Telemetry ends up in
the text, so Slack's control characters are escaped (a span name must not
ping ``<!channel>`` or forge a link), and every text is cut to the limit
beyond which Slack rejects the whole message.
"""

from __future__ import annotations

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


def message(event: str, incident: dict, rep: dict, url: str | None, actor: str | None = None,
            comment: str | None = None) -> dict:
    """The message for ``event``: ``rep`` is the incident's report, ``url`` its page (or None)."""
    severity = str(incident.get("severity") or "unknown")
    title = incident.get("title") or ""
    root = incident.get("root_cause") or {}
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
