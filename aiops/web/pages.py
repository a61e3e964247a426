"""HTML pages: the dashboard, an incident's page and the logs (server-rendered, autoescaped).

Every string shown here came from telemetry (span names, services, exception
and anomaly messages, incident titles) and is hostile. The templates are
``.html`` so Jinja escapes everything they print; nothing is marked safe and
no HTML is built in Python; ``style`` attributes only ever get numbers, which
the templates format with ``%d``/``%.2f`` (a string there is a render error,
not markup).

The incident page's Acknowledge and Resolve buttons are plain HTML forms (no
script needed) that post to ``/incidents/<id>/<action>``; those routes make
the same transition as the JSON API, guarded by a same-origin check, a
double-submit CSRF cookie and, when ``AIOPS_API_TOKEN`` is set, the token in
a password field (see ``aiops.web.auth``). They answer 303 to the incident page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

from flask import Blueprint, redirect, render_template, request, url_for

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import WHOLE_SERVICE, Key, Thresholds
from aiops.incidents import reports
from aiops.settings import current_settings
from aiops.web import auth, changes_queries, errors, live, traces
from aiops.web import endpoints as metrics
from aiops.web import incident_queries as incident_service
from aiops.web import log_queries as log_service
from aiops.web.series_queries import incident_charts, poll_seconds

bp = errors.html_pages(Blueprint("pages", __name__))  # their errors are HTML pages too

REFRESH_SECONDS = 30  # the dashboard reloads itself this often (``?refresh=0`` pauses)
DASHBOARD_ACTIVE, DASHBOARD_RESOLVED = 100, 20  # incidents listed (the tile counts every active one)
MAX_ANOMALY_ROWS = 50  # raw observations listed on an incident page
FORM_ACTOR = "web"  # "by" on the timeline when the form's name field is left empty
# ?done=<value> after a form post: the notice shown (only these; the value is never echoed).
NOTICES = {"acknowledged": "Incident acknowledged.", "resolved": "Incident resolved.",
           "silenced": "Silence created: this incident sends no notification while it lasts."}


# -- pure helpers (plain data in and out) -------------------------------------------


def endpoint_health(endpoints: Mapping[str, Mapping], baselines: Mapping[Key, BaselineValue],
                    th: Thresholds, active: Iterable) -> dict:
    """Per dashboard endpoint: ``state`` (incident|errors|slow|learning|ok), the latency
    ratio to the baseline, and the active incidents that name it (root cause first).

    Slow and learning are detection's verdicts (:meth:`Thresholds.is_slow`, :meth:`Thresholds.judges`)
    on the endpoint's window mean and its ``baselines`` entry."""
    active = list(active)
    out = {}
    for name, m in endpoints.items():
        base = m.get("baseline_latency_ms")
        avg = m.get("avg_latency_ms") or 0.0
        ratio = avg / base if base else None
        key = (m.get("service"), m.get("endpoint"))
        learned = baselines.get(key)
        roots = [i for i in active if (i.root_service, i.root_endpoint) == key]
        touched = [i for i in active if i not in roots and i.root_service == key[0]
                   and key[1] in (i.affected or [])]
        if roots:
            state = "incident"
        elif m.get("error_rate", 0.0) > th.error_rate:
            state = "errors"
        elif th.is_slow(avg, learned):
            state = "slow"
        elif not th.judges(learned):
            state = "learning"
        else:
            state = "ok"
        out[name] = {"state": state, "ratio": ratio, "roots": roots, "touched": touched}
    return out


def anomaly_summary(anomalies: Iterable[Mapping], root: tuple[str, str]) -> list[dict]:
    """Fold an incident's per-cycle anomalies into one row per (endpoint, type).

    Rows: ``service``, ``endpoint``, ``type``, ``cycles`` (how many observations),
    ``first``/``last`` (ISO times), ``peak`` observed, latest ``baseline`` and
    ``message``, and ``root`` (the row is about the root-cause endpoint). Root
    cause first, then by endpoint and type.
    """
    rows: dict[tuple, dict] = {}
    for a in anomalies:
        key = (a["service"], a["endpoint"], a["type"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "service": a["service"], "endpoint": a["endpoint"], "type": a["type"],
                "cycles": 0, "first": a["detected_at"], "peak": a["observed"],
                "root": (a["service"], a["endpoint"] or WHOLE_SERVICE) == tuple(root),
            }
        row["cycles"] += 1
        row["last"] = a["detected_at"]
        row["baseline"] = a["baseline"]
        row["message"] = a["message"]
        row["peak"] = max(row["peak"], a["observed"])
    return sorted(rows.values(), key=lambda r: (not r["root"], r["endpoint"], r["service"], r["type"]))


def surged_templates(propagation: Iterable[Mapping]) -> list[dict]:
    """The log templates that appeared or surged, as the propagation hops carry them, each once
    (with the hop's service), in the hops' order."""
    seen, out = set(), []
    for hop in propagation or ():
        for t in hop.get("templates") or ():
            key = (hop.get("service"), t.get("kind"), t.get("template"))
            if key not in seen:
                seen.add(key)
                out.append({**t, "service": hop.get("service")})
    return out


def ago(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: a compact age or duration."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = max(int(seconds), 0)
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 86400:
        h, rest = divmod(s, 3600)
        return f"{h} h {rest // 60} min" if rest >= 60 else f"{h} h"
    d, rest = divmod(s, 86400)
    return f"{d} d {rest // 3600} h" if rest >= 3600 else f"{d} d"


def fmt_ms(value: float | None) -> str:
    """``8.9 ms``, ``624 ms``, ``3,046 ms``."""
    if value is None:
        return "-"
    if value == 0:
        return "0 ms"
    return f"{value:.1f} ms" if abs(value) < 100 else f"{value:,.0f} ms"


def fmt_observed(kind: str, value: float | None) -> str:
    """An anomaly's number in its own unit (latency in ms, error rate in %, timeouts counted)."""
    if value is None:
        return "-"
    if kind == "latency":
        return fmt_ms(value)
    if kind == "error":
        return f"{100 * value:.1f}%"
    if kind == "timeout":
        return f"{value:.0f} calls"
    return f"{value:g}"


def _refresh_seconds() -> int:
    """``?refresh=N`` (0 pauses) overrides the default; clamped to 5..3600 s."""
    raw = request.args.get("refresh", "")
    try:
        value = int(raw)
    except ValueError:
        return REFRESH_SECONDS
    return 0 if value <= 0 else min(max(value, 5), 3600)


# -- views ----------------------------------------------------------------------------


@bp.app_template_filter("ms")
def _ms_filter(value):
    return fmt_ms(value)


@bp.app_template_filter("endpoint")
def _endpoint_filter(endpoint):
    """An endpoint's name; a whole-service root (no endpoint named) says so instead of a made-up one."""
    return endpoint or "(whole service)"


@bp.app_template_filter("ago")
def _ago_filter(seconds):
    return ago(seconds)


@bp.app_template_global("observed")
def _observed(kind, value):
    return fmt_observed(kind, value)


@bp.get("/")
def dashboard():
    """Live (:func:`aiops.web.live.page`): a 304 to ``live.js``' poll until the next cycle or
    incident change; without script, a reload every ``?refresh=`` seconds (0 pauses both)."""
    refresh = _refresh_seconds()
    return live.page(lambda live_args: _dashboard(refresh, live_args if refresh else {}))


def _dashboard(refresh: int, live_args: dict) -> str:
    settings = current_settings()
    now = time.time()
    page = incident_service.list_incidents(limit=DASHBOARD_ACTIVE, resolved_limit=DASHBOARD_RESOLVED,
                                           with_anomalies=False)
    active, resolved = page.active, page.resolved
    learned = metrics.baselines()
    endpoints = metrics.current(settings, now=now, learned=learned)
    return render_template(
        "dashboard.html",
        endpoints=endpoints,
        health=endpoint_health(endpoints, learned, Thresholds.from_settings(settings), active),
        active=active,
        active_total=incident_service.count_active() if len(active) == DASHBOARD_ACTIVE else len(active),
        resolved=resolved,
        window_s=settings.metrics_window,
        settings=settings,
        now=now,
        refresh=refresh,
        **live_args,
    )


@bp.get("/incidents/<incident_id>")
def incident_page(incident_id: str):
    """Live (:func:`aiops.web.live.page`), as the dashboard; an unknown id is a 404 all the same."""
    incident = incident_service.get(incident_id)
    return live.page(lambda live_args: _incident_page(incident, live_args))


def _incident_page(incident, live_args: dict):
    data = incident_service.to_json(incident)
    root = (incident.root_service, incident.root_endpoint)
    now = time.time()
    trace = traces.trace_context(incident.trace_id or "", highlight=root)
    return auth.form_page(
        "incident.html", NOTICES,
        incident=incident,
        data=data,
        summary=anomaly_summary(data["anomalies"], root),
        episode=anomaly_summary(reports.current_anomalies(data), root),
        observations=list(reversed(data["anomalies"]))[:MAX_ANOMALY_ROWS],
        templates=surged_templates(incident.propagation),
        charts=incident_charts(incident, data, now),
        changes=changes_queries.read(changes_queries.for_incident(incident, now)),
        poll=poll_seconds(),
        now=now,
        trace_id=incident.trace_id,
        **trace,
        **live_args,
    )


@bp.get("/logs")
def logs_page():
    """The stored log lines, newest first, with ``GET /aiops/logs``' filters and cursor; a bad
    filter is the HTML error page (400). A trace id links to the incident that has that trace."""
    args = {key: value for key, value in request.args.items() if value != ""}  # an empty field: no filter
    filters, rows, cursor = log_service.list_logs(args)
    traced = {r.trace_id for r in rows if r.trace_id}
    return render_template(
        "logs.html",
        rows=rows,
        args=args,
        filters=filters,
        next_args={**{k: v for k, v in args.items() if k != "cursor"}, "cursor": cursor} if cursor else None,
        incidents=incident_service.incidents_by_trace(traced),
    )


def _form_action(incident_id: str, action: str):
    """The form's post: guards, then the transition, then back to the page (303)."""
    auth.check_form()
    by, comment = incident_service.check_actor(request.form.get("by", "").strip(),
                                               request.form.get("comment", "").strip(), FORM_ACTOR)
    incident_service.change(incident_id, action, by, comment, current_settings())
    return redirect(url_for("pages.incident_page", incident_id=incident_id, done=f"{action}d"), 303)


@bp.post("/incidents/<incident_id>/acknowledge")
def acknowledge(incident_id: str):
    return _form_action(incident_id, "acknowledge")


@bp.post("/incidents/<incident_id>/resolve")
def resolve(incident_id: str):
    return _form_action(incident_id, "resolve")
