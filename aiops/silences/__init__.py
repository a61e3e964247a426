"""Silences and maintenance windows, following Alertmanager: matchers on an incident's labels
(root-cause ``service`` and ``endpoint``, ``kind``, ``severity``; exact or regex), a start and an
end, who made it and why. An incident a silence covers is still recorded and shown, but sends no
notification (:mod:`aiops.outbox` asks here before it queues one).

- :mod:`~aiops.silences.matchers`: matchers and labels, regexes checked safely (pure);
- :mod:`~aiops.silences.specs`: a request body checked field by field, and a silence's state (pure);
- :mod:`~aiops.silences.service`: create, list, read, expire, and which silence covers an incident;
- :mod:`~aiops.silences.metrics`: the ``aiops_silences_active`` gauge, read at scrape time.

It may import ``aiops.incidents`` and the layers below it, and telemetry; never the outbox, the
jobs or the web edge, which call it.
"""

from aiops.silences.errors import InvalidSilence, SilenceNotFound

__all__ = ["InvalidSilence", "SilenceNotFound"]
