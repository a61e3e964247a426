"""``aiops_silences_active``: the silences in force, read from the store when ``/metrics`` is scraped.

Read at scrape time rather than counted, so every web worker and every instance gives the same
figure, and a silence that expires by the clock drops out at once. A failing read is left out of
that scrape, logged and counted (:func:`telemetry.selfmetrics.add_collector`).
"""

from __future__ import annotations

import time

from aiops.silences import service

NAME = "aiops_silences_active"


def active_silences() -> list:
    from prometheus_client.core import GaugeMetricFamily

    return [GaugeMetricFamily(NAME, "Silences in force now (incidents they match send no notification)",
                              value=service.count_active(time.time()))]
