"""Calls between services as signals of their own. Pure logic.

Why: a network fault at a service is invisible inside its own spans. Its
callers' CLIENT spans grow by the delay while its SERVER spans stay normal, so
the *gap* between them (network plus queueing) is where it shows. Every
caller -> callee edge therefore gets three series, each with its own
:class:`~aiops.detection.robust.LogBaseline`:

- ``call``: the caller's CLIENT span duration (the only one when the callee
  never reports: it hung, or it is not instrumented but named by ``peer``);
- ``server``: the callee's SERVER span duration under that call;
- ``gap``: the first minus the second.

An edge is keyed by (signal, caller service, callee service), not by
endpoint: the network between two services is shared by all their calls, and
pooling them gives quiet edges enough values to judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiops.detection.robust import LogBaseline, Rules, Shift, judge_all
from aiops.detection.rules import is_timeout
from aiops.detection.selftime import SpanIndex, finished
from telemetry.columns import KIND_CLIENT, KIND_SERVER

EdgeKey = tuple[str, str, str]  # (signal, caller service, callee service)


@dataclass(frozen=True)
class Call:
    """One call across the network, as both sides saw it."""

    span: object  # the caller's CLIENT span
    callee_span: object | None  # the callee's SERVER span, when it reported
    caller: str
    callee: str

    @property
    def endpoint(self) -> str:
        """The callee's operation: its SERVER span's name, else the client's."""
        return self.callee_span.endpoint if self.callee_span is not None else self.span.endpoint

    def values(self) -> dict[str, float]:
        client = self.span.duration_ms
        if self.callee_span is None:
            return {"call": client}
        server = self.callee_span.duration_ms
        return {"call": client, "server": server, "gap": max(0.0, client - server)}


def calls(index: SpanIndex, now: float | None = None, ignore_services: Iterable[str] = ()) -> list[Call]:
    """Every finished CLIENT span of the window whose callee is known (it reported, or ``peer``)."""
    ignored = set(ignore_services)
    found: list[Call] = []
    for span in index.spans:
        if span.kind != KIND_CLIENT or span.service in ignored or not finished(span, now):
            continue
        kids = [c for c in index.children.get((span.trace_id, span.span_id), ()) if c.kind == KIND_SERVER]
        if kids:
            found.append(Call(span, kids[0], span.service, kids[0].service))
        elif span.peer and span.peer != span.service:
            found.append(Call(span, None, span.service, span.peer))
    return found


def shifts(
    found: Iterable[Call], baselines: Mapping[EdgeKey, LogBaseline], rules: Rules
) -> tuple[dict[EdgeKey, Shift], dict[EdgeKey, list[float]]]:
    """Judge every call against its edge's baselines: (verdicts per edge series, values per series).

    A failed call is not judged (it is an error, seen by the error rules), but
    a timed-out one is: a hang is the extreme of slow.
    """
    items = (
        ((signal, call.caller, call.callee), (signal, call.caller, call.callee),
         call.callee_span if signal == "server" else call.span, value)
        for call in found
        if not call.span.error or is_timeout(call.span)
        for signal, value in call.values().items()
    )
    return judge_all(items, baselines, rules)


def callee_endpoints(found: Iterable[Call]) -> dict[tuple[str, str], str]:
    """The callee operation of each call, by its CLIENT span: names what a shifted edge slowed."""
    return {(call.span.trace_id, call.span.span_id): call.endpoint for call in found}
