"""What logs add to root-cause analysis. Pure logic, used by :mod:`aiops.rca.analysis`.

Two facts from logs, each bounded so traces keep their say:

- a failed or slow trace whose spans logged ERROR/WARN lines points at the
  *deepest* span that logged one: an error is logged where it starts, and again
  by every caller that received it (``LOG_WALK`` of the trace's blame moves
  there); only lines of quiet services whose logs changed in the window count (a
  service that logs a warning on every request says nothing about this trace),
  and never for an anomaly that brings its own evidence (the calls into a
  service, its own time: they say where the time went, a log line elsewhere in
  the trace does not move that);
- a quiet service whose log patterns changed in the window
  (:mod:`aiops.logs.signals`) gains evidence for the anomalies whose traces
  reach it: its weight in the anomaly's opinion is multiplied by up to
  ``1 + LOG_LIFT``, split by log score (:func:`blend`).

Logs never hurt the traces' answer. A service whose logs swing in normal
operation (*noisy*, or not watched long enough to be known quiet:
:mod:`aiops.logs.noise`) has no say at all: its lines move no blame, add to no
candidate and raise nothing alone. And a quiet service's logs only add to a
candidate the traces already name (:func:`blend`): they may corroborate it, or
lift it over another the traces rank close to it (never over a clear leader), but
a candidate only the logs name does not exist in a trace anomaly's opinion, so it
can neither outrank the traces' leader nor dilute its share (its ``evidence``, by which incidents rank).

With no log lines none of this applies and RCA is exactly the trace-only one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from aiops.detection.rules import WHOLE_SERVICE, Anomaly, count_strength, is_timeout, top_endpoints
from aiops.detection.selftime import SpanIndex
from aiops.kinds import AnomalyType
from aiops.logs.signals import RAISE_SCORE, LogRecord, LogWindow
from telemetry.columns import KIND_SERVER

Key = tuple[str, str]

LOG_WALK = 0.5  # share of a trace's blame moved to the deepest span that logged a problem
LOG_TRUST = 0.5  # share of a log-raised anomaly's opinion given to its log evidence
# The most a quiet service's log change multiplies the weight of a candidate the traces name, minus 1:
# logs may lift a candidate over a leader weighing up to 1 + LOG_LIFT times as much, not over more.
LOG_LIFT = 3.0
# Score of a quiet service's alarming log signals (ERROR lines, exceptions, vanished paths) that
# raises an anomaly of its own, no trace anomaly needed: a new ERROR template at the new-template
# minimum of three lines (3 x sqrt(3) = 5.2) does, an ERROR surge five spreads, any vanished path
# (its chance is below 1e-6). WARN and INFO lines alone rank and corroborate, never raise. (5 rather
# than 6: on the TrainTicket dev day it found two more code faults for three more incidents in 28
# replays.)
MIN_ANOMALY_SCORE = RAISE_SCORE
MAX_HOP_LINES = 3  # log lines carried per propagation hop
MAX_LINE = 300  # characters of a line carried
LOG_MESSAGE = "Log pattern change: "


def deepest_logger(span, tree, lines: Iterable[LogRecord]):
    """The deepest span at or below ``span`` in ``tree`` that logged one of ``lines``, else None."""
    logged = {r.span_id for r in lines if r.span_id}
    if not logged:
        return None
    best, best_depth = None, -1
    todo = [(span, 0)]
    while todo:
        current, depth = todo.pop()
        if current.span_id in logged and depth > best_depth:
            best, best_depth = current, depth
        if depth < 64:
            todo.extend((c, depth + 1) for c in tree.children.get(current.span_id, ()))
    return best


def _failed_below(span, tree) -> set[Key]:
    """The endpoints blamed for the failed (errored or timed-out) spans strictly below ``span``."""
    found, todo, seen = set(), list(tree.children.get(span.span_id, ())), 0
    while todo and seen < 10_000:
        current, seen = todo.pop(), seen + 1
        if current.error or is_timeout(current):
            found.add(tree.blame_key(current))
        todo.extend(tree.children.get(current.span_id, ()))
    return found - {tree.index.entry(span)}


def walk(keys: Mapping[Key, float], span, tree, logs: LogWindow | None) -> Mapping[Key, float]:
    """The trace walk's blame for ``span``, a share moved to the deepest span of a quiet service (whose
    logs changed, whose warnings do not come in bursts) that logged a problem, unless the walk blames
    a failure below that span: then its lines are a caller reporting what a callee did to it ("call
    to inventory timed out"), a symptom, and the traces keep the blame."""
    lines = logs.problems.get(span.trace_id, ()) if logs is not None else ()
    quiet = [r for r in lines if r.service in logs.suspects and r.service not in logs.noisy | logs.swinging]
    deep = deepest_logger(span, tree, quiet) if quiet else None
    if deep is None or set(keys) & _failed_below(deep, tree):
        return keys
    out: dict[Key, float] = defaultdict(float)
    for key, w in keys.items():
        out[key] += (1 - LOG_WALK) * w
    out[tree.index.entry(deep)] += LOG_WALK
    return dict(out)


def suspect_keys(logs: LogWindow, window: list) -> dict[str, Key]:
    """The endpoint each log suspect's signals name, or its lines ran under (the SERVER span above the
    span that logged them), else the whole service (``(service, WHOLE_SERVICE)``): lines logged outside
    any span, or whose spans are not in the window yet, say which service but not which endpoint."""
    if not logs.suspects:
        return {}
    index = SpanIndex(window)
    keys = {}
    for service, suspect in logs.suspects.items():
        seen: Counter = Counter()
        for sig in suspect.signals:
            if sig.endpoint is not None:
                seen[(service, sig.endpoint)] += len(sig.examples) + 1  # named outright: it leads
            for r in sig.examples:
                span = index.by_id.get((r.trace_id, r.span_id))
                if span is not None and span.service == service:
                    seen[index.entry(span)] += 1
        keys[service] = min(seen, key=lambda k: (-seen[k], k)) if seen else (service, WHOLE_SERVICE)
    return keys


def evidence(related: set[str], logs: LogWindow | None, keys: Mapping[str, Key],
             blamed: Mapping[Key, float]) -> dict[Key, float]:
    """Log scores of the quiet services an anomaly's traces reach (a noisy service's say nothing).
    Logs corroborate: a service whose endpoint the traces (``blamed``) already name lends its score to
    that endpoint, so its log lines strengthen the traces' answer instead of competing with it under
    another name."""
    if logs is None:
        return {}
    named = top_endpoints(blamed)
    found: dict[Key, float] = defaultdict(float)
    for s, sus in logs.suspects.items():
        if s in related and s not in logs.noisy and sus.score > 0:
            found[named.get(s, keys[s])] += sus.score
    return dict(found)


def blend(traces: Mapping[Key, float], from_logs: Mapping[Key, float], logs_only: bool) -> dict[Key, float]:
    """An anomaly's opinion: the traces' (weights adding up to 1), each candidate the logs also name
    (``from_logs``, any scale) multiplied by up to ``1 + LOG_LIFT`` (by its share of the log scores),
    then normalised. Logs only add to the keys the traces name (weight above 0): a candidate only the
    logs name is dropped. Multiplied, not mixed in: a candidate the traces barely name (a tenth of the
    leader's weight) stays below a clear leader however loud its logs, while one the traces rank close
    to it (within ``1 + LOG_LIFT`` times) may pass it. An anomaly raised by logs alone (``logs_only``)
    gives ``LOG_TRUST`` of its opinion to the logs' keys, as they are all it has."""
    if logs_only:
        return _mixed(traces, from_logs)
    from_logs = {k: w for k, w in from_logs.items() if traces.get(k, 0.0) > 0}
    total = sum(from_logs.values())
    if total <= 0:
        return dict(traces)  # the trace-only arithmetic, exactly
    lifted = {key: w * (1 + LOG_LIFT * from_logs.get(key, 0.0) / total) for key, w in traces.items()}
    scale = sum(lifted.values())
    return {key: w / scale for key, w in lifted.items()}


def _mixed(traces: Mapping[Key, float], from_logs: Mapping[Key, float]) -> dict[Key, float]:
    total = sum(from_logs.values())
    if total <= 0:
        return dict(traces)
    opinion: dict[Key, float] = defaultdict(float)
    for key, w in traces.items():
        opinion[key] += (1 - LOG_TRUST) * w
    for key, w in from_logs.items():
        opinion[key] += LOG_TRUST * w / total
    return dict(opinion)


def anomalies(logs: LogWindow | None, keys: Mapping[str, Key], window: list, covered: set[str]):
    """Anomalies of services whose logs changed strongly and that no trace anomaly names:
    a code fault often leaves timings alone and speaks only in its logs. Only a quiet service's whose
    warnings do not come in bursts (:mod:`aiops.logs.noise`): a burst of lines is news only there."""
    if logs is None:
        return []
    by_ref = {(s.trace_id, s.span_id): s for s in window if s.kind == KIND_SERVER}
    found = []
    for service, suspect in sorted(logs.suspects.items()):
        silent = service in covered or service in logs.noisy or service in logs.swinging
        if silent or suspect.alarm_score < MIN_ANOMALY_SCORE:
            continue
        lead = suspect.lead
        shown = [by_ref[(r.trace_id, r.span_id)] for sig in suspect.signals for r in sig.examples
                 if (r.trace_id, r.span_id) in by_ref]
        key = keys.get(service, (service, WHOLE_SERVICE))
        found.append(Anomaly(service, key[1], AnomalyType.ERROR, float(lead.count), lead.expected, lead.count,
                             LOG_MESSAGE + lead.describe(), shown_by=shown,
                             onset=suspect.onset, strength=count_strength(lead.count, lead.expected)))
    return found


def line(r: LogRecord) -> dict:
    return {"time": r.time, "service": r.service, "severity_number": r.severity_number,
            "body": r.body[:MAX_LINE], "trace_id": r.trace_id, "span_id": r.span_id}


def hop_lines(service: str, trace_id: str | None, logs: LogWindow) -> list[dict]:
    """The example trace's ERROR/WARN lines that ``service`` logged (a few), else its suspect's examples."""
    lines = [r for r in logs.problems.get(trace_id or "", []) if r.service == service]
    if not lines and service in logs.suspects:
        lines = [r for sig in logs.suspects[service].signals for r in sig.examples]
    return [line(r) for r in lines[:MAX_HOP_LINES]]


def templates(service: str, logs: LogWindow) -> list[dict]:
    """The templates that appeared or surged at ``service``, strongest first (a few)."""
    suspect = logs.suspects.get(service)
    if suspect is None:
        return []
    sigs = sorted(suspect.signals, key=lambda s: -s.score)[:MAX_HOP_LINES]
    return [{"kind": s.kind, "template": s.template[:MAX_LINE], "count": s.count,
             "expected": round(s.expected, 2), "exception": s.exception, "template_id": s.template_id}
            for s in sigs]
