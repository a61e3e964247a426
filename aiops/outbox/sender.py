"""Where a message goes and the one HTTP POST that takes it there.

A row stores only its payload: URLs, the PagerDuty routing key and the
remediation token are read from the settings at send time (:func:`target`),
never written to the database, and scrubbed from every error this module
returns. :func:`send` opens no database transaction (a slow receiver must
never hold SQLite's write lock) and never raises for network trouble: that is
an :class:`Answer` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from aiops.kinds import Channel, IncidentKind
from aiops.outbox import render
from aiops.settings import Settings, env_name, remediation_field

CHANNELS = tuple(Channel)
USER_AGENT = "aiops-notifier"
ERROR_CHARS = 1000  # how much of a response body is kept as last_error
DETAIL_CHARS = 200  # how much of it goes into an incident's timeline
READ_BYTES = 4 * ERROR_CHARS  # never read more of a response than this


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


def target(settings: Settings, channel: str, payload: dict) -> Target:
    """Resolve a row's URL, headers and final payload; ``problem`` says why not, if unconfigured."""
    payload = payload if isinstance(payload, dict) else {}
    if channel in ("webhook", "slack"):
        name = env_name(render.CHANNEL_SETTINGS[channel])
        url = render.target_url(channel, settings)
        return Target(url, payload, problem=_url_problem(name, url), secrets=_secrets_of(url))
    if channel == "pagerduty":
        key = settings.text("pagerduty_routing_key")
        url = render.target_url(channel, settings)
        if not key:
            return Target(None, payload, problem="AIOPS_PAGERDUTY_ROUTING_KEY is not set")
        # The key is a secret too: it is added here, whatever the stored payload says.
        return Target(url, {**payload, "routing_key": key}, problem=_url_problem("AIOPS_PAGERDUTY_URL", url),
                      secrets=_secrets_of(url, key))
    if channel == "remediation":
        kind = payload.get("kind")
        if not kind or not isinstance(kind, str):
            return Target(None, payload, problem="remediation payload has no kind")
        url = settings.remediation_url(kind)
        known = kind in set(IncidentKind)
        name = env_name(remediation_field(kind)) if known else f"no hook for kind {kind!r}"
        token = settings.text("remediation_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Target(url, payload, headers, problem=_url_problem(name, url),
                      secrets=_secrets_of(url, token))
    return Target(None, payload, problem=f"unknown channel {channel!r}")


def configured(settings: Settings, channel: str) -> bool:
    """Whether a channel can send at all (remediation: any hook URL is set)."""
    if channel == "remediation":
        return any(settings.remediation_url(kind) for kind in IncidentKind)
    if channel == "pagerduty":
        return bool(settings.text("pagerduty_routing_key"))
    return target(settings, channel, {}).problem is None


@dataclass(frozen=True)
class Answer:
    """One attempt's result: a status and body, or no status and why (network error)."""

    status: int | None
    body: str = ""
    error: str | None = None
    retry_after: str | None = None

    @property
    def summary(self) -> str:
        """A short line for a channel's last_error and the timeline."""
        if self.status is None:
            return self.error or "no answer"
        text = f"HTTP {self.status}"
        return f"{text}: {self.body[:DETAIL_CHARS]}" if self.body else text


def _network_error(exc: requests.RequestException, timeout: float) -> str:
    """Describe a failed request without its URL (requests puts the URL in its messages)."""
    if isinstance(exc, requests.Timeout):
        return f"timed out after {timeout:g} s ({type(exc).__name__})"
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:  # find the OS-level reason
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return f"connection failed: {cause.strerror}"
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError keeps it there
        nested = [a for a in (reason, *cause.args) if isinstance(a, BaseException)]
        cause = cause.__cause__ or cause.__context__ or (nested[0] if nested else None)
    return f"request failed ({type(exc).__name__})"


def _read_body(resp: requests.Response) -> str:
    """At most READ_BYTES of the body, as text (a receiver's error page can be huge)."""
    data = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=1024):
            data += chunk
            if len(data) >= READ_BYTES:
                break
    except requests.RequestException:
        pass  # the status already tells what happened
    return bytes(data[:READ_BYTES]).decode(resp.encoding or "utf-8", errors="replace").strip()


def send(to: Target, timeout: float, extra_headers: Mapping[str, str] | None = None) -> Answer:
    """POST the payload as JSON; never raises for network trouble (that is an Answer too)."""
    headers = {"User-Agent": USER_AGENT, **(extra_headers or {}), **to.headers}
    try:
        with requests.post(to.url, json=to.payload, headers=headers, timeout=timeout,
                           allow_redirects=False, stream=True) as resp:
            body = _read_body(resp)
            return Answer(resp.status_code, to.scrub(body), retry_after=resp.headers.get("Retry-After"))
    except requests.RequestException as exc:
        return Answer(None, error=to.scrub(_network_error(exc, timeout)))
