"""Delivering the notification outbox: webhook, Slack, PagerDuty and remediation hooks.

The enqueuer (:mod:`aiops.notify`) writes ``notifications`` rows in the same
transaction as the incident change; this module sends them. Every gunicorn
worker of every instance may call :func:`deliver_due` at once, so each row is
first *claimed* with a conditional UPDATE that sets a lease (one process sends
it at a time), then sent over HTTP with no database transaction open (a slow
receiver must never hold SQLite's write lock), then its outcome is recorded in
a short write transaction. Delivery is at least once: a process killed between
sending and recording leaves a lease that expires, and another process resends
(receivers dedupe on ``dedup_key``).

Failures are retried with jittered exponential backoff (and ``Retry-After``);
a circuit breaker per channel, kept in the shared ``notification_channels``
row, stops hammering a receiver that is down. URLs, the PagerDuty routing key
and the remediation token are read from the configuration at send time; this
module never writes them to the database, and scrubs them from recorded errors.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

import requests
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from aiops import channels
from aiops.incidents import add_event
from aiops.kinds import Channel, IncidentKind
from aiops.models import ChannelState, Incident, Notification, iso
from aiops.owner import owner_name
from aiops.settings import Settings, env_name, remediation_field, settings_of
from telemetry import selfmetrics
from telemetry.db import begin_write, db, is_sqlite

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "retry", "permanent"]
BreakerState = Literal["closed", "open", "half-open"]

CHANNELS = tuple(Channel)
USER_AGENT = "aiops-notifier"
RETRY_AFTER_MAX = 3600.0  # a receiver asking for more than an hour is not taken at its word
ERROR_CHARS = 1000  # how much of a response body is kept as last_error
DETAIL_CHARS = 200  # how much of it goes into an incident's timeline
READ_BYTES = 4 * ERROR_CHARS  # never read more of a response than this
_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


# --- Pure decisions (no Flask, no database, no network) -----------------------------------------


def classify(status_code: int | None) -> Outcome:
    """What an answer means: 2xx delivered; 429, 5xx and no answer at all (None) are worth
    retrying; any other status (4xx, and 3xx since redirects are not followed) will not get
    better by resending the same request, so it is permanent."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 429 or status_code >= 500:
        return "retry"
    return "permanent"


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first): "equal jitter".

    The step doubles per attempt up to ``cap``; the wait is half the step plus a random
    share of the other half. The random half spreads the retries of rows (and processes)
    that failed together; the fixed half keeps a flapping receiver from being hit again
    at once, which full jitter (anywhere in [0, step]) allows. Always within [0, cap].
    """
    exponent = min(max(attempt, 1) - 1, 64)  # 2.0 ** 1100 would overflow
    step = max(0.0, min(cap, base * 2.0**exponent))
    return step / 2 + rand() * step / 2


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait (delta-seconds or an HTTP-date).

    None when absent or unreadable (negative numbers included), so the caller falls back
    to its own backoff; a date in the past means 0; capped at an hour.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC, origin unknown
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def next_attempt(attempts: int, max_attempts: int, now: float, wait: float,
                 asked: float | None) -> float | None:
    """When to try again after ``attempts`` failed attempts, or None to give up.

    ``wait`` is our backoff, ``asked`` the receiver's Retry-After: the later one wins.
    """
    if attempts >= max_attempts:
        return None
    return now + max(wait, asked or 0.0)


def breaker_state(open_until: float | None, now: float) -> BreakerState:
    """Closed (no open_until), open (until it passes), then half-open (one probe may go)."""
    if open_until is None:
        return "closed"
    return "open" if open_until > now else "half-open"


def breaker_after(
    failures: int, open_until: float | None, outcome: Outcome, *, probe: bool,
    threshold: int, cooldown: float, now: float,
) -> tuple[int, float | None]:
    """The breaker after one attempt: (consecutive_failures, open_until).

    A success closes it. A retryable failure counts; reaching ``threshold`` (or failing
    the half-open probe) opens it for ``cooldown``. A permanent 4xx is the request's
    fault, not the receiver's: it does not count, and a probe answered with one shows the
    receiver is up again, so the breaker closes.
    """
    if outcome == "delivered":
        return 0, None
    if outcome == "permanent":
        return failures, (None if probe else open_until)
    failures += 1
    if probe or failures >= threshold:
        return failures, now + cooldown
    return failures, open_until


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
        name = env_name(channels.CHANNEL_SETTINGS[channel])
        url = channels.target_url(channel, settings)
        return Target(url, payload, problem=_url_problem(name, url), secrets=_secrets_of(url))
    if channel == "pagerduty":
        key = settings.text("pagerduty_routing_key")
        url = channels.target_url(channel, settings)
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
        name = env_name(remediation_field(kind)) if kind in set(IncidentKind) else f"no hook for kind {kind!r}"
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


# --- HTTP (no database) --------------------------------------------------------------------------


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


# --- Claiming and recording (the database) -------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    id: int
    channel: str
    event: str
    incident_id: str
    payload: dict
    lease_until: float
    owner: str
    probe: bool  # the half-open breaker's one test row


_SKIP_CHANNEL = object()


def _clock(now: float | None) -> Callable[[], float]:
    return (lambda: now) if now is not None else time.time


def _channel_states() -> dict[str, tuple[int, float | None]]:
    rows = db.session.execute(
        select(ChannelState.name, ChannelState.consecutive_failures, ChannelState.open_until))
    return {name: (failures, open_until) for name, failures, open_until in rows}


def _ensure_channels(names: Iterable[str]) -> None:
    """Create missing channel rows; INSERT .. ON CONFLICT DO NOTHING is race-safe on both databases."""
    names = sorted(set(names))
    if not names:
        return
    begin_write()
    insert = sqlite_insert if is_sqlite(db.engine) else pg_insert
    db.session.execute(
        insert(ChannelState)
        .values([{"name": n, "consecutive_failures": 0, "delivered": 0, "failed": 0, "attempts": 0}
                 for n in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    db.session.commit()


def _candidates(now: float, limit: int, skip: set[str]) -> list[tuple[int, str]]:
    """Due rows with a free lease, oldest first, leaving out channels whose breaker is open."""
    query = (
        select(Notification.id, Notification.channel)
        .where(
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
            Notification.lease_until.is_(None) | (Notification.lease_until < now),
        )
        .order_by(Notification.created_at, Notification.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Notification.channel.not_in(sorted(skip)))
    rows = [(row_id, channel) for row_id, channel in db.session.execute(query)]
    db.session.rollback()  # end the read transaction before any write one
    return rows


def _claim(row_id: int, channel: str, now: float, lease: float, use_breaker: bool):
    """Take one row for ``lease`` seconds: a _Claim, None (someone else has it) or _SKIP_CHANNEL.

    One write transaction, two conditional UPDATEs. When the channel's breaker is half-open
    the first one takes the probe (it moves open_until to the lease's end, so every other
    process sees the breaker open until this probe is recorded); the second claims the row
    unless another process holds it, or holds an older row of the same incident and channel
    (so a "resolve" cannot overtake the "trigger" still in flight).
    """
    begin_write()
    probe = False
    if use_breaker:
        state = db.session.execute(
            select(ChannelState.open_until).where(ChannelState.name == channel)).first()
        mode = breaker_state(state[0] if state else None, now)
        if mode == "open":
            db.session.rollback()
            return _SKIP_CHANNEL
        if mode == "half-open":
            took = db.session.execute(
                update(ChannelState)
                .where(ChannelState.name == channel, ChannelState.open_until <= now)
                .values(open_until=now + lease)
                .execution_options(synchronize_session=False)
            ).rowcount
            if took != 1:
                db.session.rollback()
                return _SKIP_CHANNEL
            probe = True
    older = aliased(Notification)
    in_flight = exists().where(
        older.incident_id == Notification.incident_id,
        older.channel == Notification.channel,
        older.id < Notification.id,
        older.lease_until >= now,
    )
    owner = owner_name()
    claimed = db.session.execute(
        update(Notification)
        .where(
            Notification.id == row_id,
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
            Notification.lease_until.is_(None) | (Notification.lease_until < now),
            ~in_flight,
        )
        .values(lease_until=now + lease, lease_owner=owner)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return None
    row = db.session.execute(
        select(Notification.event, Notification.incident_id, Notification.payload)
        .where(Notification.id == row_id)).one()
    db.session.commit()
    return _Claim(row_id, channel, row.event, row.incident_id, row.payload or {}, now + lease, owner, probe)


def _lock_one(model, *where):
    """The row, locked until commit on PostgreSQL (SQLite: BEGIN IMMEDIATE already serialises)."""
    return db.session.execute(
        select(model).where(*where).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _record(claim: _Claim, answer: Answer | None, problem: str | None, now: float, s: Settings) -> bool:
    """Write one attempt's outcome; True when the channel's breaker is now open.

    ``answer`` is None when nothing was sent (``problem`` says why). Locks are taken in
    the order incident, channel, notification, the order every writer of these uses.
    """
    begin_write()
    incident = _lock_one(Incident, Incident.id == claim.incident_id)
    channel = _lock_one(ChannelState, ChannelState.name == claim.channel)
    row = _lock_one(Notification, Notification.id == claim.id)
    outcome: Outcome = "permanent" if answer is None else classify(answer.status)
    ours = (row is not None and row.lease_owner == claim.owner and row.lease_until == claim.lease_until
            and row.status in ("pending", "superseded"))
    final: str | None = None  # "delivered" or "failed" when the row ends here
    gave_up = False
    if row is not None and (ours or (outcome == "delivered" and row.status in ("pending", "superseded"))):
        # Not ours any more (our lease ran out and another process took it): only a success
        # is worth writing, since the message did go out; a failure is the new owner's to judge.
        if answer is not None:
            row.attempts = (row.attempts or 0) + 1
            row.last_status = answer.status
        if outcome == "delivered":
            final = row.status = "delivered"
            row.delivered_at = now
            row.last_error = None
        elif answer is None:
            row.last_error = problem
            if row.status == "pending":
                final = row.status = "failed"
        elif outcome == "permanent":
            row.last_error = (answer.body or f"HTTP {answer.status} (empty body)")[:ERROR_CHARS]
            if row.status == "pending":
                final = row.status = "failed"
        else:
            error = (answer.body or f"HTTP {answer.status}") if answer.status is not None else answer.error
            wait = backoff(row.attempts, s.notify_backoff, s.notify_backoff_max)
            when = next_attempt(row.attempts, s.notify_max_attempts, now, wait, retry_after(answer.retry_after, now))
            if when is None:
                gave_up = True
                row.last_error = f"gave up after {row.attempts} attempts: {answer.summary}"[:ERROR_CHARS]
                if row.status == "pending":
                    final = row.status = "failed"
            else:
                row.next_attempt_at = when
                row.last_error = (error or "")[:ERROR_CHARS]
        if ours:
            row.lease_until = None
            row.lease_owner = None
    breaker_open = False
    if channel is not None:
        if answer is not None:
            channel.attempts = (channel.attempts or 0) + 1
            channel.last_attempt_at = now
            failures, open_until = breaker_after(
                channel.consecutive_failures or 0, channel.open_until, outcome, probe=claim.probe,
                threshold=s.breaker_threshold, cooldown=s.breaker_cooldown, now=now)
            channel.consecutive_failures, channel.open_until = failures, open_until
            breaker_open = breaker_state(open_until, now) == "open"
        if final == "delivered":
            channel.delivered = (channel.delivered or 0) + 1
        elif final == "failed":
            channel.failed = (channel.failed or 0) + 1
        if outcome != "delivered":
            channel.last_error = problem if answer is None else answer.summary
    if incident is not None and final is not None:
        _note(incident, claim, row, answer, problem, final, gave_up, now)
    db.session.commit()
    selfmetrics.notification_attempted(claim.channel, final or "retry")
    return breaker_open


def _note(incident: Incident, claim: _Claim, row: Notification, answer: Answer | None,
          problem: str | None, final: str, gave_up: bool, now: float) -> None:
    """The incident's timeline (and remediation state) after a row ends delivered or failed."""
    attempts = row.attempts or 0
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if claim.channel == "remediation":
        kind = claim.payload.get("kind", "?")
        if final == "delivered":
            incident.remediation = "ran"
            incident.remediation_at = now
            add_event(incident, "remediation", now,
                      f"POST hook for {kind} answered {answer.status}: {answer.body[:DETAIL_CHARS]}",
                      "remediation")
        else:
            incident.remediation = "failed"
            why = problem if answer is None else (
                f"gave up after {attempts} attempts: {answer.summary}" if gave_up else answer.summary)
            add_event(incident, "remediation", now, f"POST hook for {kind} failed: {why}", "remediation")
        return
    label = f"{claim.channel} {claim.event}"
    if final == "delivered":
        kind, detail = "notified", f"{label} delivered (HTTP {answer.status}){tries}"
    elif answer is None:
        kind, detail = "notify-failed", f"{label} not sent: {problem}"
    elif gave_up:
        kind, detail = "notify-failed", f"{label} gave up after {attempts} attempts: {answer.summary}"
    else:
        kind, detail = "notify-failed", f"{label} failed: {answer.summary}"
    add_event(incident, kind, now, detail, claim.channel)


def deliver_due(settings: Settings, now: float | None = None, limit: int = 50) -> int:
    """Send the rows that are due (call inside an app context); returns how many it took.

    A row "taken" was claimed by this call and then sent (or failed at once because its
    channel is no longer configured). ``now`` fixes the clock (tests, replay); by default
    each step reads the wall clock. Rows of a channel whose breaker is open are left
    pending and not counted; a half-open channel gets one row per call.
    """
    clock = _clock(now)
    s = settings
    t = clock()
    states = _channel_states()
    unconfigured = {ch for ch in CHANNELS if not configured(settings, ch)}
    skip = {name for name, (_, open_until) in states.items()
            if name not in unconfigured and breaker_state(open_until, t) == "open"}
    rows = _candidates(t, limit, skip)
    _ensure_channels({channel for _, channel in rows} - states.keys())
    taken = 0
    done: set[str] = set()  # channels this call is finished with (breaker open, probe spent)
    for row_id, channel in rows:
        if channel in done:
            continue
        # The row's target decides whether its breaker matters: an unconfigured row fails now.
        use_breaker = channel in CHANNELS and channel not in unconfigured
        claim = _claim(row_id, channel, clock(), s.notify_lease_seconds, use_breaker)
        if claim is _SKIP_CHANNEL:
            done.add(channel)
            continue
        if claim is None:
            continue
        taken += 1
        to = target(settings, channel, claim.payload)
        if to.problem is not None:
            _record(claim, None, to.problem, clock(), s)
            continue
        answer = send(to, s.notify_timeout, {"X-AIOps-Notification-Id": str(claim.id)})
        if _record(claim, answer, None, clock(), s) or claim.probe:
            done.add(channel)
    return taken


# --- Reading: GET /aiops/notifications ------------------------------------------------------------


def stats(settings: Settings, now: float | None = None) -> dict:
    """Per channel: configured?, row counts by status, and the breaker as every process sees it."""
    now = time.time() if now is None else now
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in db.session.execute(
        select(Notification.channel, Notification.status, func.count()).group_by(
            Notification.channel, Notification.status)
    ):
        counts.setdefault(channel, {})[status] = n
    states = {c.name: c for c in db.session.scalars(select(ChannelState))}
    result = {}
    for name in [*CHANNELS, *sorted((counts.keys() | states.keys()) - set(CHANNELS))]:
        c = states.get(name)
        by_status = counts.get(name, {})
        open_until = c.open_until if c else None
        result[name] = {
            "configured": configured(settings, name),
            "pending": by_status.get("pending", 0),
            "delivered": by_status.get("delivered", 0),
            "failed": by_status.get("failed", 0),
            "superseded": by_status.get("superseded", 0),
            "breaker": breaker_state(open_until, now),
            "consecutive_failures": c.consecutive_failures if c else 0,
            "open_until": iso(open_until),
            "attempts": c.attempts if c else 0,
            "last_error": c.last_error if c else None,
            "last_attempt_at": iso(c.last_attempt_at) if c else None,
        }
    return result


def history(limit: int = 100, incident_id: str | None = None, status: str | None = None,
            channel: str | None = None) -> list[dict]:
    """The latest notifications, newest first, optionally for one incident, status or channel."""
    query = select(Notification).order_by(Notification.created_at.desc(), Notification.id.desc())
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    if status is not None:
        query = query.where(Notification.status == status)
    if channel is not None:
        query = query.where(Notification.channel == channel)
    return [n.to_dict() for n in db.session.scalars(query.limit(limit))]


# --- The background worker ------------------------------------------------------------------------

JOB_ID = "aiops-notify"


def tick(app) -> int:
    """The job body: one deliver_due pass; exceptions are logged (the next tick tries again)."""
    with app.app_context():
        try:
            return deliver_due(settings_of(app))
        except Exception:
            log.exception("notification delivery failed")
            db.session.rollback()
            return 0
        finally:
            db.session.remove()
