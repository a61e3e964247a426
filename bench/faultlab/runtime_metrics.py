"""The lab services' runtime metrics, exported as a real service's are: the OpenTelemetry SDK's
MeterProvider with the OTLP/HTTP metric exporter to the product's ``POST /v1/metrics``.

Two observable gauges under the semantic conventions' names, read without psutil:
``process.cpu.utilization`` (CPU seconds this process used per wall second since the last reading,
over the CPUs available: a CPU hog raises it) and ``process.memory.usage`` (resident bytes, from
``/proc/self/statm``; on systems without it, the peak from ``getrusage``).
"""

from __future__ import annotations

import os
import resource
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

EXPORT_EVERY_MS = 5_000  # the lab's detection interval is 10 s: two points a cycle
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def metrics_url(traces_url: str) -> str:
    """The product's ``/v1/metrics`` beside the ``/v1/traces`` the lab was given."""
    base = traces_url[: -len("/v1/traces")] if traces_url.endswith("/v1/traces") else traces_url.rstrip("/")
    return base + "/v1/metrics"


class _Cpu:
    """CPU seconds per wall second since the last reading, over the CPUs available."""

    def __init__(self) -> None:
        self.cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.last = (time.monotonic(), time.process_time())

    def __call__(self, _options):
        wall, cpu = time.monotonic(), time.process_time()
        then, used = self.last
        self.last = (wall, cpu)
        if wall > then:
            yield Observation((cpu - used) / (wall - then) / self.cpus)


def _memory(_options):
    try:
        with open("/proc/self/statm") as statm:
            yield Observation(int(statm.read().split()[1]) * _PAGE)
    except (OSError, ValueError, IndexError):
        yield Observation(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def runtime_metrics(name: str, traces_url: str, every_ms: int = EXPORT_EVERY_MS) -> MeterProvider:
    exporter = OTLPMetricExporter(endpoint=metrics_url(traces_url), timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=every_ms)
    provider = MeterProvider(resource=Resource.create({"service.name": name}), metric_readers=[reader])
    meter = provider.get_meter("bench.faultlab")
    meter.create_observable_gauge(
        "process.cpu.utilization",
        callbacks=[_Cpu()],
        unit="1",
        description="CPU used per wall second, over the CPUs available",
    )
    meter.create_observable_gauge(
        "process.memory.usage", callbacks=[_memory], unit="By", description="resident memory"
    )
    return provider
