"""Which metric names speak of a process's resources, and of which: the one mapping. Pure.

The OpenTelemetry semantic conventions' names (and the runtimes' older ``process.runtime.*`` ones),
with the series :mod:`telemetry.otlp_metrics` derives from counters (``<name>.rate``: CPU seconds
per second). A name not listed here is stored and readable, but is no RCA evidence.

- ``cpu``: CPU in use (cores, or a share of a limit or of the machine);
- ``memory``: memory in use (bytes, or a share of a limit);
- ``restarts``: how often its containers restarted (a count that only grows).
"""

from __future__ import annotations

CPU, MEMORY, RESTARTS = "cpu", "memory", "restarts"

RESOURCE_METRICS: dict[str, str] = {
    # CPU
    "k8s.pod.cpu.usage": CPU,
    "k8s.pod.cpu_limit_utilization": CPU,
    "k8s.pod.cpu.time.rate": CPU,
    "k8s.container.cpu_limit_utilization": CPU,
    "container.cpu.usage": CPU,
    "container.cpu.utilization": CPU,
    "container.cpu.time.rate": CPU,
    "process.cpu.utilization": CPU,
    "process.cpu.time.rate": CPU,
    "process.runtime.cpython.cpu.utilization": CPU,
    "process.runtime.jvm.cpu.utilization": CPU,
    "jvm.cpu.recent_utilization": CPU,
    "system.cpu.utilization": CPU,
    # memory
    "k8s.pod.memory.usage": MEMORY,
    "k8s.pod.memory.working_set": MEMORY,
    "k8s.pod.memory_limit_utilization": MEMORY,
    "k8s.container.memory_limit_utilization": MEMORY,
    "container.memory.usage": MEMORY,
    "container.memory.working_set": MEMORY,
    "process.memory.usage": MEMORY,
    "process.runtime.cpython.memory": MEMORY,
    "process.runtime.jvm.memory.usage": MEMORY,
    "jvm.memory.used": MEMORY,
    "system.memory.utilization": MEMORY,
    # restarts
    "k8s.container.restarts": RESTARTS,
    "k8s.pod.restarts": RESTARTS,
}
NAMES = tuple(sorted(RESOURCE_METRICS))


def kind_of(name: str) -> str | None:
    """``cpu``, ``memory``, ``restarts``, or None for a name that is no resource evidence."""
    return RESOURCE_METRICS.get(name)
