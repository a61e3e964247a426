"""Synthetic metric points for ``bench/detect.py --metrics``: what an OpenTelemetry Collector
scraping a cluster sends, reduced to the product's numeric series.

20 services x 5 pods x 20 series (the pod's CPU and memory, which RCA reads, and 18 others: request
rates, latency quantiles, GC, threads...), each a point every 6 s: 2,000 series, 10,000 points per
30-s detection interval. A slow service's pods also burn CPU (a hog).
"""

from __future__ import annotations

import random

PODS = 5
OTHER = [f"app.metric{i:02d}" for i in range(18)]
NAMES = ["k8s.pod.cpu.usage", "k8s.pod.memory.usage", *OTHER]
STEP = 6.0  # seconds between two points of one series


class MetricMaker:
    def __init__(self, services: list[str], seed: int = 1):
        self.rng = random.Random(seed)
        self.series = [(s, f"{s}-{p}", name) for s in services for p in range(PODS) for name in NAMES]
        self.base = {key: self.rng.uniform(0.1, 2.0) for key in self.series}

    def points(self, count: int, t0: float, seconds: float, slow: frozenset = frozenset()) -> list[tuple]:
        """``count`` points over ``[t0, t0 + seconds)``, series after series each ``STEP``."""
        rows = []
        per_round = len(self.series)
        rounds = max(1, count // per_round)
        gap = seconds / rounds
        for r in range(rounds):
            when = t0 + r * gap
            for service, pod, name in self.series[: count - len(rows)]:
                value = self.base[(service, pod, name)] * self.rng.uniform(0.9, 1.1)
                if service in slow and name == "k8s.pod.cpu.usage":
                    value *= 8  # the hog
                rows.append((when, service, pod, "node-1", name, None, value))
        return rows


def insert_sql() -> str:
    from telemetry.columns import METRIC_FIELDS

    marks = ", ".join("?" * len(METRIC_FIELDS))
    return f"INSERT INTO metric_points ({', '.join(METRIC_FIELDS)}) VALUES ({marks})"
