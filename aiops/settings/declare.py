"""How a setting is declared: :func:`setting` (a dataclass field that knows its variable, parser,
meaning and section) and the sections of the generated reference, in their order.

Apart from :mod:`aiops.settings.fields` so that a group of settings can be declared in a module of
its own (:mod:`aiops.settings.export`, :mod:`aiops.settings.tempo`) and still be read, checked and
documented like the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

# Sections of the generated reference, in this order.
STORAGE = "Storage and recording"
DETECTION = "Detection"
INCIDENTS = "Incidents"
RULES = "Trace-query rules"
NOTIFICATIONS = "Notifications"
REMEDIATION = "Remediation hooks"
SECURITY = "Security"
INGEST = "OTLP ingest and replay"
EXPORT = "OTLP export"
TEMPO = "Tempo pull source"
DEMO = "Demo"
SERVING = "Serving"
SECTIONS = (STORAGE, DETECTION, INCIDENTS, RULES, NOTIFICATIONS, REMEDIATION, SECURITY, INGEST, EXPORT, TEMPO,
            DEMO, SERVING)


def setting(default: Any, env: str, doc: str, section: str, parser: Callable[[str], Any] = str,
            shown: str | None = None) -> Any:
    """A dataclass field that knows its variable, parser and meaning.

    ``shown`` is the default as the docs print it, when the value itself says
    too little (``None`` meaning "derived from another setting").
    """
    factory = (lambda: dict(default)) if isinstance(default, dict) else None
    meta = {"env": env, "doc": doc, "section": section, "parse": parser, "shown": shown}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)
