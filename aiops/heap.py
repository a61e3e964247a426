"""Pausing Python's cyclic garbage collector around work that makes many short-lived objects.

A detection cycle or a service map builds some 100,000 rows, tuples and dicts with no reference
cycles among them: reference counting frees them all. The cyclic collector, triggered by their
count, would meanwhile walk the whole process heap several times (a third of a cycle's time, half
of a map's: ``bench/detect.py``, ``bench/map.py``). The pause is process-wide, so other threads'
garbage waits as long (a fraction of a second); collection runs as usual after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
