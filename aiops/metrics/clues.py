"""What metrics add to root-cause analysis. Pure logic, used by :mod:`aiops.rca.analysis`.

Metrics corroborate, they do not detect: a service whose CPU, memory or restarts left their
normal band (:mod:`aiops.metrics.baseline`) gains evidence for the anomalies whose traces reach it
(``METRIC_TRUST`` of the anomaly's opinion, split by how far each left), on the endpoint the
traces already blame there, else on the whole service. So a CPU hog at a service the traces reach
can become a candidate, or the root; a metric change alone raises nothing (no anomaly, no incident):
latency or errors must have moved. With no metric points nothing applies and RCA is unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from aiops.detection.rules import WHOLE_SERVICE, Key, top_endpoints
from aiops.metrics.baseline import MetricSuspect

METRIC_TRUST = 0.5  # most of an anomaly's opinion metric evidence can take, when its traces reach some
# ... reached at the strongest evidence's deviation: a series as far as HALF_TRUST spreads above its
# median takes half of it (a pod's CPU often wobbles 10 or 20 spreads a minute; a hog is hundreds).
HALF_TRUST = 20.0
MAX_HOP_SERIES = 3  # series an incident's metrics hop lists
METRIC_MESSAGE = "Resources left normal: "


def evidence(
    related: set[str], suspects: Mapping[str, MetricSuspect] | None, blamed: Mapping[Key, float]
) -> dict[Key, float]:
    """Metric scores of the services an anomaly's traces reach, each on the endpoint of that service
    the traces (``blamed``) weigh most, else the whole service."""
    if not suspects:
        return {}
    named = top_endpoints(blamed)
    found: dict[Key, float] = defaultdict(float)
    for service, suspect in suspects.items():
        if service in related and suspect.score > 0:
            found[named.get(service, (service, WHOLE_SERVICE))] += suspect.score
    return dict(found)


def trust(suspects: Mapping[str, MetricSuspect] | None, found: Mapping[Key, float]) -> float:
    """The share of an anomaly's opinion its metric evidence ``found`` takes: ``METRIC_TRUST`` scaled
    by the furthest series' deviation (``z / (z + HALF_TRUST)``)."""
    if not suspects or not found:
        return 0.0
    services = {key[0] for key in found}
    z = max((s.z for name in services for s in suspects[name].signals), default=0.0)
    return METRIC_TRUST * z / (z + HALF_TRUST)


def hop(suspect: MetricSuspect, endpoint: str | None) -> dict:
    """The incident path's hop for a root whose resources left normal: the lead series' metric,
    its normal band and the change, and the other series that left (a few)."""
    shifts = sorted(suspect.signals, key=lambda s: (-s.z, s.name, s.pod or ""))
    lead = shifts[0]
    return {
        "service": suspect.service,
        "endpoint": endpoint or None,
        "signal": "metrics",
        "observed_ms": None,
        "baseline_ms": None,
        "deviation": round(lead.z, 2),
        "onset": suspect.onset,
        "detail": METRIC_MESSAGE + lead.describe(),
        "metrics": [s.to_json() for s in shifts[:MAX_HOP_SERIES]],
    }
