"""The incident-storm ceiling. Pure logic: this cycle's groups in, the groups to apply out.

Forged or buggy telemetry can make every span its own root cause: one 2 MB
OTLP request once opened 2,000 incidents and sent 800 notifications. A cycle
may therefore open at most ``AIOPS_MAX_NEW_INCIDENTS`` new incidents. Groups
about an already open incident are never held back (they open nothing);
the new groups beyond the ceiling are not dropped but merged into one
"incident storm" incident, whose candidates name the roots it holds, so the
on-call person hears once that something is flooding detection.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiops.rca.analysis import Group

ROOT = ("aiops", "incident storm")
MAX_ANOMALIES = 50  # kept on the storm group per cycle (the count says how many there were)
MAX_CANDIDATES = 20


def _weight(group: Group) -> tuple:
    """New groups with the most evidence keep their own incident first."""
    return (-sum(a.request_count for a in group.anomalies), -len(group.anomalies))


def cap(groups: list[Group], open_roots: Iterable[tuple[str, str]], ceiling: int) -> tuple[list[Group], int]:
    """(groups to apply, how many new groups were merged into the storm group).

    A group is new when no open incident has its root. Within the ceiling
    nothing changes; over it, the excess new groups become one storm group.
    While a storm incident is open every new group joins it (a flood that
    goes on must not open ``ceiling`` more incidents each cycle); it opens
    incidents of its own again once the storm has resolved.
    """
    known = set(open_roots)
    if ROOT in known:
        ceiling = 0
    new = [g for g in groups if g.root not in known and g.root != ROOT]
    if len(new) <= ceiling:
        return groups, 0
    keep = {id(g) for g in sorted(new, key=_weight)[:ceiling]}
    merged = [g for g in new if id(g) not in keep]
    applied = [g for g in groups if id(g) in keep or g.root in known or g.root == ROOT]
    applied.append(storm_group(merged))
    return applied, len(merged)


def storm_group(merged: list[Group]) -> Group:
    anomalies = [a for g in merged for a in g.anomalies]
    candidates = [(g.root, g.candidates[0][1] if g.candidates else 0.0) for g in merged]
    example = next((g.example_trace for g in merged if g.example_trace), None)
    return Group(ROOT, anomalies[:MAX_ANOMALIES], candidates[:MAX_CANDIDATES], example)


def describe(group: Group) -> tuple[str, str]:
    """(title, issue) of a storm incident."""
    roots = ", ".join(f"{s}/{e}" for (s, e), _ in group.candidates[:5])
    more = len(group.candidates) - 5
    title = "incident storm: more new problems than one cycle may open (AIOPS_MAX_NEW_INCIDENTS)"
    issue = (f"{len(group.candidates)} new problems over the ceiling, merged here: {roots}"
             + (f" and {more} more" if more > 0 else "")
             + ". Check the telemetry sources (forged or broken data?) before trusting them.")
    return title, issue
