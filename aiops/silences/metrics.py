"""``aiops_silences_active``: the silences in force, read from the store when ``/metrics`` is scraped.

Read at scrape time rather than counted, so every web worker and every instance gives the same
figure, and a silence that expires by the clock drops out at once. A failing read leaves the
gauge out of that scrape (and is logged once); it never fails the scrape.
"""

from __future__ import annotations

import logging
import time

from aiops.silences import service

log = logging.getLogger(__name__)
NAME = "aiops_silences_active"


class ActiveSilences:
    """A ``prometheus_client`` collector (``collect()`` yields metric families)."""

    def __init__(self):
        self._failed = False

    def describe(self):
        return []  # nothing to check at registration (collect reads the store)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            count = service.count_active(time.time())
        except Exception:  # noqa: BLE001 - a scrape must not fail on the store
            if not self._failed:
                self._failed = True
                log.exception("%s: reading the silences failed (logged once)", NAME)
            return
        yield GaugeMetricFamily(NAME, "Silences in force now (incidents they match send no notification)",
                                value=count)
