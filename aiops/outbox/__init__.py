"""The notification outbox: webhook, Slack, PagerDuty and remediation hooks, delivered at least once.

Rows are written in the same transaction as the incident change that causes
them; a worker delivers them later, from any process, with retries. It may
import ``aiops.incidents`` and the layers below it, and telemetry; never
``aiops.jobs``, ``aiops.web`` or ``aiops.cli``, which call it. Import what you
need from here; the modules behind it are the outbox's own:

- :mod:`~aiops.outbox.channels`: each channel once: what turns it on, where it sends (read at send
  time, so no secret is stored), which renderer makes its body;
- :mod:`~aiops.outbox.enqueue`: queueing rows in the incident's transaction (supersede, rate limits);
- :mod:`~aiops.outbox.silencing`: what active silences hold back (:mod:`aiops.silences`);
- :mod:`~aiops.outbox.render`: the JSON body per channel (:mod:`~aiops.outbox.slack` for Slack);
- :mod:`~aiops.outbox.policy`: pure decisions (what an answer means, backoff, the circuit breaker);
- :mod:`~aiops.outbox.sender`: the HTTP POST;
- :mod:`~aiops.outbox.store`: claiming rows with leases, and the per-channel breaker rows;
- :mod:`~aiops.outbox.record`: writing an attempt's outcome to the row, the channel and the incident;
- :mod:`~aiops.outbox.deliver`: one delivery pass (claim, send, record) and the worker's job;
- :mod:`~aiops.outbox.queries`: per-channel stats for ``GET /aiops/notifications``
  (its rows: :mod:`aiops.web.incident_queries`).
"""

from aiops.outbox.channels import CHANNELS, configured
from aiops.outbox.deliver import JOB_ID, deliver_due, tick
from aiops.outbox.enqueue import dispatch, enqueue, enqueue_remediation, human_transition
from aiops.outbox.queries import stats

__all__ = [
    "CHANNELS",
    "JOB_ID",
    "configured",
    "deliver_due",
    "dispatch",
    "enqueue",
    "enqueue_remediation",
    "human_transition",
    "stats",
    "tick",
]
