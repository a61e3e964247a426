"""Latency anomalies from the robust verdicts (:mod:`aiops.detection.robust`,
:mod:`aiops.detection.evidence`): series whose values shifted, services whose incoming calls
shifted outside their own spans, and the strength the mean rule's anomalies take from them.
The mean rules themselves live in :mod:`aiops.detection.rules`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiops.detection.robust import Rules, Shift
from aiops.detection.rules import DEFAULT_STRENGTH, Anomaly, Key
from aiops.kinds import AnomalyType


def shifted(verdicts: Mapping[Key, Shift], rules: Rules, what: str,
            already: Iterable[Anomaly] = ()) -> list[Anomaly]:
    """Latency anomalies for series whose values shifted (one per key, none twice).

    ``what`` says which series: ``self`` (an entry's own work) or ``duration``
    (an endpoint's whole spans, to catch moderate shifts the mean rule misses).
    """
    taken = {(a.key, a.type) for a in already}
    found: list[Anomaly] = []
    for key, v in sorted(verdicts.items()):
        if not v.significant(rules) or (key, AnomalyType.LATENCY) in taken:
            continue
        if what == "self":
            message = (f"Self-time spike: {len(v.strong)} of {v.judged} spans spent {v.observed_ms:.0f}ms "
                       f"in {key[0]}'s own work (baseline: {v.baseline_ms:.0f}ms)")
        else:
            message = (f"Latency shift: {len(v.strong)} of {v.judged} requests took {v.observed_ms:.0f}ms "
                       f"(baseline: {v.baseline_ms:.0f}ms)")
        found.append(Anomaly(key[0], key[1], AnomalyType.LATENCY, v.observed_ms, v.baseline_ms, v.judged,
                             message, evidence=v.spans() if what == "self" else [],
                             shown_by=v.spans(),
                             onset=v.onset, strength=v.strength(rules)))
    return found


def network(suspects: Iterable, already: Iterable[Anomaly] = (), rules: Rules = Rules()) -> list[Anomaly]:
    """A latency anomaly per service whose incoming calls shifted outside its own spans.

    Such a service may show nothing in its own spans, so no other rule would
    name it: the evidence spans are its callers' CLIENT spans.
    """
    taken = {(a.key, a.type) for a in already}
    found: list[Anomaly] = []
    for suspect in suspects:
        ins = [s for s in suspect.signals if s.kind == "network-in"]
        if not ins:
            continue
        lead = max(ins, key=lambda s: s.score)
        key = (suspect.service, lead.endpoint)
        if (key, AnomalyType.LATENCY) in taken:
            continue
        shift = lead.shift
        callers = ", ".join(sorted({s.peer for s in ins}))
        found.append(Anomaly(
            key[0], key[1], AnomalyType.LATENCY, shift.observed_ms, shift.baseline_ms, shift.judged,
            f"Network: {len(shift.strong)} of {shift.judged} calls from {callers} took "
            f"{shift.observed_ms:.0f}ms outside {key[0]}'s own spans (baseline: {shift.baseline_ms:.0f}ms)",
            evidence=[sp for s in ins for sp in s.shift.spans()], onset=suspect.onset,
            strength=max(s.shift.strength(rules) for s in ins),
        ))
    return found


def with_strength(anomalies: Iterable[Anomaly], whole: Mapping[Key, Shift], rules: Rules) -> list[Anomaly]:
    """Give the mean rule's latency anomalies the strength of their endpoint's robust verdict
    (how unlikely its slow values are), at least ``DEFAULT_STRENGTH``: the mean rule has none."""
    anomalies = list(anomalies)
    for a in anomalies:
        if a.type == AnomalyType.LATENCY and not a.strength and a.key in whole:
            a.strength = max(DEFAULT_STRENGTH, whole[a.key].strength(rules))
    return anomalies
