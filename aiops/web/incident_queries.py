"""Incidents as the JSON API and the HTML pages both use them: queries and hand transitions.

Each function owns its transaction and raises an error that carries no HTTP:
the incident rules' own (:mod:`aiops.incidents.errors`: not found, a transition
the incident's state refuses) and :class:`InvalidInput` (a filter, cursor,
page size or field the caller got wrong). :mod:`aiops.web.errors` maps them to
404, 409 and 400, as JSON for the API and as an HTML page for the pages, in
one place.

Lists are filtered and paged in SQL, newest ``last_seen`` first, with a
keyset cursor (:mod:`aiops.web.pagination`): a page costs the same few statements
however many incidents are stored, and anomalies, when wanted, come in one
extra statement for the whole page (``selectinload``), never one per incident.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from aiops import outbox
from aiops.incidents.errors import IncidentNotFound
from aiops.incidents.reports import with_report
from aiops.kinds import Severity
from aiops.settings import Settings
from aiops.silences import service as silences
from aiops.store.declared import Silence
from aiops.store.models import Incident, Notification
from aiops.web import pagination
from telemetry.attributes import MAX_KEY_CHARS, MAX_VALUE_CHARS
from telemetry.db import begin_write, db

STATUSES = ("open", "acknowledged", "resolved")
ACTIVE_STATUSES = ("open", "acknowledged")
NOTIFICATION_STATUSES = ("pending", "delivered", "failed", "superseded")
ACTIONS = ("acknowledge", "resolve")
DEFAULT_LIMIT, MAX_LIMIT = 100, 500  # incidents per list and page
DEFAULT_NOTIFICATIONS, MAX_NOTIFICATIONS = 100, 1000
MAX_BY, MAX_COMMENT = 200, 2000  # characters of "by" and "comment" on an acknowledge or resolve
# Column widths: a longer id, service or channel names nothing stored, and keeps a URL short.
MAX_ID_CHARS, MAX_SERVICE_CHARS, MAX_CHANNEL_CHARS = 64, 255, 32
_LISTS = ("active", "resolved")


class InvalidInput(Exception):
    """A filter, cursor, page size or field that is not one the service takes (a 400)."""


# -- reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a list shows: by status, severity and root-cause service (None: any)."""

    status: str | None = None
    severity: str | None = None
    service: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> IncidentFilter:
        return cls(
            status=_choice(args, "status", STATUSES),
            severity=_choice(args, "severity", tuple(Severity)),
            service=text_filter(args, "service", MAX_SERVICE_CHARS),
        )

    def where(self) -> list:
        clauses = []
        if self.status is not None:
            clauses.append(Incident.status == self.status)
        if self.severity is not None:
            clauses.append(Incident.severity == self.severity)
        if self.service is not None:
            clauses.append(Incident.root_service == self.service)
        return clauses

    def shows(self, which: str) -> bool:
        """Whether the active or the resolved list can hold anything under this filter."""
        if self.status is None:
            return True
        return (self.status == "resolved") == (which == "resolved")


@dataclass
class IncidentPage:
    active: list[Incident]
    resolved: list[Incident]
    next: str | None  # the cursor of the next page (both lists), None when both are done


def list_incidents(filters: IncidentFilter = IncidentFilter(), limit: int = DEFAULT_LIMIT,
                   cursor: str | None = None, with_anomalies: bool = True,
                   resolved_limit: int | None = None) -> IncidentPage:
    """Up to ``limit`` active and ``limit`` (or ``resolved_limit``) resolved incidents, newest
    ``last_seen`` first, after ``cursor`` (a previous page's ``next``). ``with_anomalies`` loads
    every listed incident's anomalies in one more statement (the JSON needs them; the dashboard
    does not)."""
    limits = {"active": limit, "resolved": limit if resolved_limit is None else resolved_limit}
    if not all(1 <= n <= MAX_LIMIT for n in limits.values()):
        raise InvalidInput(f"'limit' must be between 1 and {MAX_LIMIT}")
    starts = None if cursor is None else decode_cursor(cursor, _LISTS, str)
    rows: dict[str, list[Incident]] = {}
    ends: dict[str, pagination.Position | None] = {}
    for name in _LISTS:
        if not filters.shows(name) or (starts is not None and starts[name] is None):
            rows[name], ends[name] = [], None
            continue
        which = Incident.status != "resolved" if name == "active" else Incident.status == "resolved"
        query = select(Incident).where(which, *filters.where())
        if starts is not None:
            query = query.where(after(starts[name], Incident.last_seen, Incident.id))
        n = limits[name]
        query = query.order_by(Incident.last_seen.desc(), Incident.id.desc()).limit(n + 1)
        if with_anomalies:
            query = query.options(selectinload(Incident.anomalies))
        found = list(db.session.scalars(query))
        rows[name] = found[:n]
        ends[name] = (found[n - 1].last_seen, found[n - 1].id) if len(found) > n else None
    more = any(pos is not None for pos in ends.values())
    return IncidentPage(rows["active"], rows["resolved"], pagination.encode(ends) if more else None)


def count_active(filters: IncidentFilter = IncidentFilter()) -> int:
    """How many incidents are open or acknowledged (the dashboard shows a page, and this number)."""
    query = select(func.count()).select_from(Incident).where(Incident.status != "resolved",
                                                             *filters.where())
    return db.session.scalar(query) or 0


def get(incident_id: str, lock: bool = False) -> Incident:
    """The incident; ``lock`` for a write transaction that changes it (PostgreSQL row lock)."""
    incident = None
    if len(incident_id) <= MAX_ID_CHARS and "\x00" not in incident_id:  # neither can be stored
        incident = db.session.get(Incident, incident_id, with_for_update=lock)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id[:MAX_ID_CHARS]!r}")
    return incident


def incidents_by_trace(trace_ids: set[str]) -> dict[str, str]:
    """trace id -> the id of the newest incident whose example trace it is (for links from log lines)."""
    if not trace_ids:
        return {}
    found = db.session.execute(select(Incident.trace_id, Incident.id)
                               .where(Incident.trace_id.in_(sorted(trace_ids)[:1000]))
                               .order_by(Incident.last_seen))
    return {trace_id: incident_id for trace_id, incident_id in found}


def to_json(incident: Incident, live: Sequence[Silence] | None = None) -> dict:
    """The contract's incident JSON (``DESIGN.md``), its plain-language report included, and
    ``silenced``/``silence_id``: the active silence that covers it, if it is still active (``live``:
    the silences in force, read once for a whole list; None: read them now)."""
    data = with_report(incident.to_dict())
    silence = None
    if incident.active:
        silence = silences.covering(data, silences.active(time.time()) if live is None else live)
    data["silenced"] = silence is not None
    data["silence_id"] = silence.id if silence is not None else None
    return data


def notification_history(args: Mapping[str, str]) -> tuple[list[dict], str | None]:
    """``GET /aiops/notifications``'s rows, newest first, and the next page's cursor (or None).

    ``args``: ``limit``, ``cursor``, and the filters ``incident``, ``status`` and ``channel``.
    """
    limit = page_limit(args, DEFAULT_NOTIFICATIONS, MAX_NOTIFICATIONS)
    status = _choice(args, "status", NOTIFICATION_STATUSES)
    query = select(Notification)
    for column, value in ((Notification.incident_id, text_filter(args, "incident", MAX_ID_CHARS)),
                          (Notification.status, status),
                          (Notification.channel, text_filter(args, "channel", MAX_CHANNEL_CHARS))):
        if value is not None:
            query = query.where(column == value)
    raw = args.get("cursor")
    if raw is not None:
        start = decode_cursor(raw, ("notifications",), int)["notifications"]
        if start is None:
            return [], None
        query = query.where(after(start, Notification.created_at, Notification.id))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)
    found = list(db.session.scalars(query))
    more = len(found) > limit
    last = found[limit - 1] if more else None
    cursor = pagination.encode({"notifications": (last.created_at, last.id)}) if last else None
    return [n.to_dict() for n in found[:limit]], cursor


def page_query(args: Mapping[str, str]) -> tuple[IncidentFilter, int, str | None]:
    """``GET /aiops/incidents``'s query string: (filters, limit, cursor); InvalidInput if bad."""
    filters = IncidentFilter.from_args(args)
    limit = page_limit(args, DEFAULT_LIMIT, MAX_LIMIT)
    cursor = args.get("cursor")
    if cursor is not None:
        decode_cursor(cursor, _LISTS, str)
    return filters, limit, cursor


# -- changing ---------------------------------------------------------------------------


def check_actor(by: object, comment: object, default_by: str) -> tuple[str, str]:
    """Who made a hand transition and why: strings of bounded length (``by`` empty: ``default_by``)."""
    if not isinstance(by, str) or not isinstance(comment, str) or len(by) > MAX_BY \
            or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"'by' (at most {MAX_BY} characters) and 'comment' (at most {MAX_COMMENT}) "
                           "must be strings")
    return by or default_by, comment


def change(incident_id: str, action: str, by: str, comment: str, settings: Settings,
           now: float | None = None) -> Incident:
    """Acknowledge or resolve by hand in one write transaction, and tell the channels that were
    told of the incident. IncidentNotFound, InvalidTransition: nothing changed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    begin_write()
    try:
        incident = get(incident_id, lock=True)
        outbox.human_transition(incident, action, time.time() if now is None else now, by, comment, settings)
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return incident


def acknowledge(incident_id: str, by: str, comment: str, settings: Settings) -> Incident:
    return change(incident_id, "acknowledge", by, comment, settings)


def resolve(incident_id: str, by: str, comment: str, settings: Settings) -> Incident:
    return change(incident_id, "resolve", by, comment, settings)


# -- helpers (shared by the other paged lists: aiops.web.log_queries) ------------------------


def after(position: pagination.Position, at, key):
    """Rows strictly after ``position`` in ``(at desc, key desc)`` order."""
    when, ident = position
    return or_(at < when, and_(at == when, key < ident))


def decode_cursor(cursor: str, names: tuple[str, ...], id_type: type) -> dict:
    try:
        return pagination.decode(cursor, names, id_type)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def page_limit(args: Mapping[str, str], default: int, maximum: int) -> int:
    try:
        return pagination.parse_limit(args.get("limit"), default, maximum)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name)
    if value is not None and value not in allowed:
        raise InvalidInput(f"'{name}' must be one of {', '.join(allowed)}")
    return value


def text_filter(args: Mapping[str, str], name: str, max_chars: int) -> str | None:
    """A free-text filter: at most a column's width, and no NUL byte (no database column holds one)."""
    value = args.get(name)
    if value is not None and (len(value) > max_chars or "\x00" in value):
        raise InvalidInput(f"'{name}' must be at most {max_chars} characters, without NUL")
    return value


MAX_ATTR_CHARS = MAX_KEY_CHARS + 1 + MAX_VALUE_CHARS  # a stored key, ":" and a stored value
ATTR_PATTERN = "^([^:\\u0000]+:[^\\u0000]*)?$"  # the OpenAPI documents' (empty: no filter)


def attr_filter(args: Mapping[str, str]) -> tuple[str, str] | None:
    """``attr=key:value`` (what changed, the trace search): a stored attribute's value; a key or
    value longer than any stored one matches no span rather than being refused."""
    raw = text_filter(args, "attr", MAX_ATTR_CHARS)
    if not raw:
        return None
    key, sep, value = raw.partition(":")
    if not sep or not key:
        raise InvalidInput("'attr' must be key:value, like k8s.pod.name:checkout-7d9f")
    return key, value
