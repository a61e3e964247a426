"""What a live page's answer depends on in the store, as an ETag: the detection cycles run and the
incidents' changes (opened, acknowledged, resolved, seen again). Two single-row reads and no span,
so a page that polls with ``If-None-Match`` gets a 304 for a millisecond of a gunicorn thread until
a cycle finishes or an incident changes (the map, the endpoint and incident pages)."""

from __future__ import annotations

import hashlib

from sqlalchemy import case, func, select

from aiops.store.models import DetectionState, Incident
from telemetry.db import db


def etag(*question) -> str:
    """A strong validator of the answer to ``question`` (the request's own parameters) until the
    next cycle or incident change."""
    state = db.session.execute(select(DetectionState.cycles, DetectionState.last_cycle_at)).first()
    acknowledged = func.sum(case((Incident.status == "acknowledged", 1), else_=0))
    changed = db.session.execute(select(func.count(), func.max(Incident.last_seen),
                                        func.max(Incident.resolved_at), acknowledged)).first()
    key = repr((question, tuple(state or ()), tuple(changed or ())))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
