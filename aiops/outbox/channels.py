"""Each channel the outbox sends to, described once: what turns it on, where it sends, how it renders.

Enqueueing, delivery and the stats all read these descriptions, so no rule of a
channel is stated twice. A row stores its rendered body and nothing secret:
URLs, the PagerDuty routing key and the hook token are read from the settings
(a trace-query rule's webhook: from its rule) when the row is sent (:func:`target`),
so a rotated key or URL takes effect for rows already queued, and every error
the send returns is scrubbed of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiops.kinds import Channel, IncidentKind
from aiops.outbox.render import EVENTS, pagerduty_body, slack_body, webhook_body
from aiops.outbox.store import rule_webhook
from aiops.settings import Settings, env_name, remediation_field

# (event, incident, settings, actor, comment) -> the body the outbox stores
Renderer = Callable[[str, dict, Settings, str | None, str | None], dict]


@dataclass(frozen=True)
class Target:
    """Where and how one row goes, from the configuration at send time (never stored)."""

    url: str | None
    payload: dict
    headers: dict = field(default_factory=dict)
    problem: str | None = None  # why it cannot be sent (channel not configured)
    secrets: tuple[str, ...] = ()  # strings to keep out of errors

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "<redacted>")
        return text


@dataclass(frozen=True)
class Notifier:
    """A channel that tells people about an incident: the webhook, Slack, PagerDuty."""

    name: Channel
    switch: str  # the setting that turns it on (set and not blank)
    url: str  # the setting that says where it posts (its default when blank)
    body: Renderer
    key: str | None = None  # the body field that carries ``switch``, a secret: added when sent, never stored

    def configured(self, settings: Settings) -> bool:
        """Set and not blank: an exported but empty variable must not turn a channel on."""
        return settings.text(self.switch) is not None

    def address(self, settings: Settings) -> str | None:
        """Where it posts, or None when it is not configured."""
        if not self.configured(settings):
            return None
        return settings.text(self.url) or getattr(Settings, self.url)

    def stored(self, event: str, incident: dict, settings: Settings, actor: str | None = None,
               comment: str | None = None) -> dict:
        """The body the outbox keeps for ``event``: what the receiver gets, but for the secret."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        return self.body(event, incident, settings, actor, comment)

    def sendable(self, stored: dict, settings: Settings) -> dict:
        """The stored body with the secret only the send adds: the configured one.

        Rows queued by versions that kept the routing key in the payload still carry one;
        it is replaced, never sent, so a rotated key cannot leak out through an old row.
        """
        if self.key is None:
            return stored
        return {**stored, self.key: settings.text(self.switch)}

    def target(self, settings: Settings, payload: dict) -> Target:
        """Where a stored body goes now; an unconfigured channel is named by the setting it lacks."""
        if not self.configured(settings):
            return Target(None, payload, problem=f"{env_name(self.switch)} is not set")
        url = self.address(settings)
        return Target(url, self.sendable(payload, settings), problem=_url_problem(env_name(self.url), url),
                      secrets=_secrets_of(url, settings.text(self.switch)))


@dataclass(frozen=True)
class Hooks:
    """The remediation hooks: one URL per incident kind (the row names its kind), an optional token."""

    name: Channel = Channel.REMEDIATION

    def configured(self, settings: Settings) -> bool:
        return any(settings.remediation_url(kind) for kind in IncidentKind)

    def target(self, settings: Settings, payload: dict) -> Target:
        """The hook of the row's kind, with the token if one is set."""
        kind = payload.get("kind")
        if not kind or not isinstance(kind, str):
            return Target(None, payload, problem="remediation payload has no kind")
        url = settings.remediation_url(kind)
        known = kind in set(IncidentKind)
        name = env_name(remediation_field(kind)) if known else f"no hook for kind {kind!r}"
        token = settings.text("remediation_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Target(url, payload, headers, problem=_url_problem(name, url), secrets=_secrets_of(url, token))


@dataclass(frozen=True)
class RuleHooks:
    """Trace-query rules' own webhooks (:mod:`aiops.outbox.alerts`): the row names its rule
    (``rule_id``), whose ``webhook_url`` is read from the store when the row is sent. On whenever
    notifications are: rules are made at run time, so no setting says whether one has a webhook."""

    name: Channel = Channel.RULE

    def configured(self, settings: Settings) -> bool:
        return bool(settings.notifications)

    def target(self, settings: Settings, payload: dict) -> Target:
        rule_id = payload.get("rule_id")
        known = isinstance(rule_id, int) and not isinstance(rule_id, bool) and 0 < rule_id < 2**31
        url = rule_webhook(rule_id) if known else None
        if not url:
            return Target(None, payload, problem=f"rule {rule_id} is gone or has no webhook_url")
        return Target(url, payload, problem=_url_problem("the rule's webhook_url", url),
                      secrets=_secrets_of(url))


NOTIFIERS = (
    Notifier(Channel.WEBHOOK, switch="webhook_url", url="webhook_url", body=webhook_body),
    Notifier(Channel.SLACK, switch="slack_webhook_url", url="slack_webhook_url", body=slack_body),
    Notifier(Channel.PAGERDUTY, switch="pagerduty_routing_key", url="pagerduty_url", body=pagerduty_body,
             key="routing_key"),
)
_ALL: dict[str, Notifier | Hooks | RuleHooks] = {c.name: c for c in (*NOTIFIERS, Hooks(), RuleHooks())}
CHANNELS = tuple(_ALL)  # every channel, the order the stats list them in


def notifier(channel: str) -> Notifier:
    """The notification channel named ``channel``; ValueError for any other name."""
    found = _ALL.get(channel)
    if not isinstance(found, Notifier):
        names = ", ".join(n.name for n in NOTIFIERS)
        raise ValueError(f"unknown channel {channel!r}; expected one of {names}")
    return found


def notifiers(settings: Settings) -> list[Notifier]:
    """The notification channels that are configured, in :data:`NOTIFIERS` order."""
    return [n for n in NOTIFIERS if n.configured(settings)]


def configured(settings: Settings, channel: str) -> bool:
    """Whether a channel is turned on (remediation: any hook URL is set); unknown names are not."""
    found = _ALL.get(channel)
    return found is not None and found.configured(settings)


def target(settings: Settings, channel: str, payload: dict) -> Target:
    """Resolve a row's URL, headers and final payload; ``problem`` says why not, if unconfigured."""
    payload = payload if isinstance(payload, dict) else {}
    found = _ALL.get(channel)
    if found is None:
        return Target(None, payload, problem=f"unknown channel {channel!r}")
    return found.target(settings, payload)


def render(channel: str, event: str, incident: dict, settings: Settings, actor: str | None = None,
               comment: str | None = None) -> dict:
    """The JSON body ``channel``'s receiver gets for ``event``: the stored body and the send's additions."""
    found = notifier(channel)
    return found.sendable(found.stored(event, incident, settings, actor, comment), settings)


def _secrets_of(url: str | None, *more: str | None) -> tuple[str, ...]:
    """The URL and, when long enough to be one, its path and query (a Slack webhook's path
    is its secret), longest first. Short paths like ``/hook`` are left alone."""
    parts = [url, *more]
    if url:
        split = urlsplit(url)
        parts += [p for p in (split.path, split.query) if len(p) >= 16]
    return tuple(sorted({p for p in parts if p}, key=len, reverse=True))


def _url_problem(setting: str, url: str | None) -> str | None:
    """Why a configured URL cannot be used (named by its setting: the URL itself is a secret)."""
    if not url:
        return f"{setting} is not set"
    split = urlsplit(str(url))
    if split.scheme not in ("http", "https") or not split.netloc:
        return f"{setting} is not an http(s) URL"
    return None
