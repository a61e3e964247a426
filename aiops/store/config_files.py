"""Objects a config file describes (SLOs, trace-query rules), read and upserted by name, once a
process needs them. Shared by :mod:`aiops.slos.service` and :mod:`aiops.rules.service`, which say
how to check, find, create and replace one of theirs.

A file is JSON (a list, or ``{"<key>": [...]}``) or TOML (``[[<key>]]``), at most
:data:`MAX_CONFIG_BYTES`. A wrong entry is logged and skipped; a file that cannot be read is logged
and tried again the next time (:class:`LoadOnce`).
"""

from __future__ import annotations

import json
import logging
import threading
import tomllib
import weakref
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from telemetry.db import db

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1_000_000


def read_bodies(path: str, key: str) -> list:
    """The bodies listed in the file at ``path`` (ValueError: not such a file)."""
    raw = Path(path).read_bytes()[:MAX_CONFIG_BYTES + 1]
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    data = tomllib.loads(raw.decode()) if path.endswith(".toml") else json.loads(raw)
    bodies = data.get(key) if isinstance(data, dict) else data
    if not isinstance(bodies, list):
        raise ValueError(f'{path}: expected a list (JSON: [...] or {{"{key}": [...]}}; TOML: [[{key}]])')
    return bodies


def upsert_by_name(path: str, key: str, model, name_of: Callable[[object], str],
                   create: Callable[[object], object], replace: Callable[[int, object], object],
                   refused: tuple[type[Exception], ...]) -> int:
    """Create each body the file lists under ``key``, or replace the ``model`` row of the same
    ``name``; returns how many. ``name_of`` checks a body (raising one of ``refused``: the entry is
    logged and skipped) and gives its name."""
    changed = 0
    for n, body in enumerate(read_bodies(path, key)):
        try:
            existing = db.session.scalar(select(model.id).where(model.name == name_of(body)))
            db.session.rollback()
            if existing is None:
                create(body)
            else:
                replace(existing, body)
            changed += 1
        except refused as exc:
            db.session.rollback()
            log.error("%s: %s #%d skipped: %s", path, key, n + 1, exc)
        except IntegrityError:  # another process created it at the same moment
            db.session.rollback()
    return changed


class LoadOnce:
    """Load the file a setting names the first time a process needs it, once per database."""

    def __init__(self, setting: str):
        self.setting = setting
        self._loaded: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> paths loaded
        self._lock = threading.Lock()

    def __call__(self, path: str | None, load: Callable[[str], object]) -> None:
        if not path or path in self._loaded.get(db.engine, ()):
            return
        with self._lock:
            if path in self._loaded.get(db.engine, ()):
                return
            try:
                load(path)
                self._loaded.setdefault(db.engine, set()).add(path)
            except (OSError, ValueError) as exc:
                db.session.rollback()
                log.error("%s %s not loaded: %s", self.setting, path, exc)
