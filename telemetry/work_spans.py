"""Spans of the product's own background work: a detection cycle, an outbox delivery pass.

Requests to the product are recorded like any request (under the service of its own routes,
``aiops``); the worker's work is not a request, so it gets a span here: one root INTERNAL span
per detection cycle and per delivery pass that sent something, under the same service (which
detection leaves out, ``AIOPS_IGNORE_SERVICES``), stored like the product's other spans and
exported with them (``AIOPS_EXPORT_OTLP_ENDPOINT``), so a tracing backend shows what the worker
did, when and for how long. Its figures (spans read, anomalies, incidents opened, messages sent)
are attributes, stored in the span's ``attributes`` column (:mod:`telemetry.attributes`) like any
span's, so the export carries them and the trace pages show them.

Cheap (one tuple into the span buffer, which writes it with the next batch) and it never raises:
a telemetry failure must not fail the work it describes. Nothing is recorded with
``AIOPS_RECORD_REQUESTS=0``.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from telemetry.attributes import encode
from telemetry.columns import KIND_INTERNAL
from telemetry.rows import exception_fields

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

PREFIX = "aiops."  # the attributes of work spans (kept through the export's fallback file)


def record(app: Flask, name: str, started: float, duration_ms: float,
           attributes: dict[str, int | float | str | bool], exception: BaseException | None = None) -> None:
    """Store (and export) one span of work ``name`` that began at ``started`` (epoch seconds), under
    the service of the app's own routes; ``attributes`` are named ``aiops.*``; a failed piece of work
    passes its ``exception``."""
    try:
        if app.extensions["aiops_recorder"].name == "off":
            return
        names = app.extensions["aiops_service_names"]
        service = names.apart_service or names.own
        exc_type, exc_message, exc_stack = exception_fields(exception) if exception else (None, None, None)
        row = (format(random.getrandbits(128) or 1, "032x"), format(random.getrandbits(64) or 1, "016x"),
               None, service, name, KIND_INTERNAL, None, None, exception is not None, started,
               duration_ms, None, exc_type, exc_message, exc_stack, encode(attributes))
        app.extensions["aiops_buffer"].add(row)
    except Exception:  # noqa: BLE001 - recording never fails the work it records
        log.exception("could not record the span of %s", name)
