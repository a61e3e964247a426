"""The log memory in the database: mined templates, the miners' state and the log baselines.

The detection cycle mines each service's log lines into templates
(:mod:`aiops.logs.mining`) and judges them against baselines
(:mod:`aiops.logs.signals`); both live in the process that runs the cycle
(:mod:`aiops.logs.feed`). :func:`save` writes them in the cycle's own
transaction; :func:`load` reads them back before a cycle whenever the memory
in this process is not the newest saved one: after a restart, or when another
process (another instance's worker) ran the last cycles. So a service's kind of
line keeps its template id, and the ids written on the log rows always name
the templates listed in ``log_templates``.

What one cycle writes is bounded by the lines it read (``StoreFeed.BATCH``):

- ``logs.template_id`` of every line it read from the store: one executemany
  UPDATE by primary key of plain tuples (:func:`telemetry.store.set_template_ids`);
- ``log_templates``: per (service, template) mined, the count, first and last
  time seen, the latest text (bounded) and whether it reports an exception:
  one executemany UPDATE and one INSERT;
- ``log_miners``: the drain3 snapshots of the services that wrote lines;
- ``log_memory``: the baselines as JSON, where the store feed stopped, and a
  version; the UPDATE is conditional on the version this process loaded, so a
  cycle that overran its lease never overwrites a newer memory.

Serialisation: the baselines are plain JSON (tuple keys and sets become
lists), the miners their templates as compressed JSON
(:func:`aiops.logs.mining.dump`), not drain3's own snapshot: that is
jsonpickle, and decoding it builds whatever objects the stored bytes name, so
whoever could write this database could run code in the worker.
"""

from __future__ import annotations

import logging
import math
from dataclasses import fields, is_dataclass
from operator import itemgetter

from sqlalchemy import delete, insert, select, update

from aiops.logs import signals as ls
from aiops.logs.feed import LogMemory, Registered
from aiops.logs.mining import is_exception
from aiops.store.models import LogMiner, LogState, LogTemplate
from telemetry import store
from telemetry.db import begin_write, db

log = logging.getLogger(__name__)

MEMORY_ID = 1
NESTED = {"present"}  # dict fields whose values are dicts (logpaths.PathBaselines.present)
MAX_TEMPLATE_CHARS = 1000  # characters of a template's text stored (a mined body is at most 2000)


# -- the baselines as JSON (pure) -------------------------------------------------------


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0  # JSON (and PostgreSQL's json) has no NaN
    if isinstance(value, dict):
        return [[_plain(k), _plain(v)] for k, v in value.items()]  # JSON objects only have string keys
    return value


def _key(value):
    return tuple(value) if isinstance(value, list) else value


def encode_baselines(base) -> dict:
    """Every dict, set and dataclass field of ``base`` (:class:`~aiops.logs.signals.LogBaselines`) as
    JSON: dicts as ``[[key, value], ...]`` (nested dicts too), sets as ``[key, ...]``."""
    out = {}
    for f in fields(base):
        value = getattr(base, f.name)
        if isinstance(value, dict):
            out[f.name] = _plain(value)
        elif isinstance(value, set):
            out[f.name] = [_plain(k) for k in value]
        elif is_dataclass(value):
            out[f.name] = encode_baselines(value)
    return out


def _dict(raw, nested: bool) -> dict:
    return {_key(k): (_dict(v, False) if nested else v) for k, v in raw}


def decode_baselines(data, base=None):
    """The inverse of :func:`encode_baselines`; fields it does not name keep their defaults."""
    base = ls.LogBaselines() if base is None else base
    if not isinstance(data, dict):
        return base
    for f in fields(base):
        raw, current = data.get(f.name), getattr(base, f.name)
        if is_dataclass(current):
            decode_baselines(raw, current)
        elif not isinstance(raw, list):
            continue
        elif isinstance(current, dict):
            setattr(base, f.name, _dict(raw, f.name in NESTED))
        elif isinstance(current, set):
            setattr(base, f.name, {_key(k) for k in raw})
    return base


# -- reading and writing (the caller owns the transaction) ----------------------------


def load(reg: Registered | None) -> None:
    """Take the saved memory when it is newer than this process's (one small read otherwise)."""
    if reg is None:
        return
    version = db.session.scalar(select(LogState.version).where(LogState.id == MEMORY_ID))
    if version is None or version == reg.version:
        return
    row = db.session.execute(
        select(LogState.cursor, LogState.baselines).where(LogState.id == MEMORY_ID)).one()
    miners = {r.service: r.state for r in db.session.execute(select(LogMiner.service, LogMiner.state))}
    try:
        reg.memory = LogMemory.restore({"miner": miners, "base": decode_baselines(row.baselines)},
                                       reg.memory.rules)
    except Exception:  # noqa: BLE001 - a damaged snapshot must not stop detection
        log.exception("the saved log memory (version %s) cannot be read: starting a new one", version)
        reg.memory = LogMemory(rules=reg.memory.rules)
    reg.version = version
    resume = getattr(reg.feed, "resume", None)
    if resume is not None:
        resume(row.cursor)
    log.info("log memory version %s loaded: %d services' templates", version, len(miners))


def forget(reg: Registered | None) -> None:
    """After a failed cycle: what this process judged was not saved; load the saved memory again."""
    if reg is not None:
        reg.version = None


def save(reg: Registered | None, logs: ls.LogWindow | None, now: float) -> None:
    """Write what the cycle mined and learned (inside the cycle's write transaction)."""
    if reg is None or logs is None:
        return
    mem = reg.memory
    if not logs.templates and not mem.base.windows:
        return  # no logs ever: a trace-only system writes nothing
    version = (reg.version or 0) + 1
    values = {"version": version, "cursor": getattr(reg.feed, "cursor", None),
              "baselines": encode_baselines(mem.base), "updated_at": now}
    if reg.version is None:
        db.session.execute(insert(LogState).values(id=MEMORY_ID, **values))
    else:
        done = db.session.execute(update(LogState).where(
            LogState.id == MEMORY_ID, LogState.version == reg.version).values(**values))
        if done.rowcount != 1:
            log.warning("the log memory was saved by another process meanwhile: not overwriting it")
            reg.version = None
            return
    services = {key[0] for key in logs.templates}
    _write_miners(mem.miner.state() if reg.version is None else mem.miner.state_of(services), now)
    reg.version = version
    # In row order: the UPDATE then walks the table's pages (and the index's NULL entries) in order.
    store.set_template_ids(sorted(((key[1], r.row_id) for key, lines in logs.templates.items()
                                   for r in lines if r.row_id), key=itemgetter(1)))
    _write_templates(logs, mem)


def _write_miners(states: dict[str, bytes], now: float) -> None:
    if states:
        db.session.execute(delete(LogMiner).where(LogMiner.service.in_(states)))
        db.session.execute(insert(LogMiner), [{"service": s, "state": blob, "updated_at": now}
                                              for s, blob in states.items()])


def _write_templates(logs: ls.LogWindow, mem: LogMemory) -> None:
    t = LogTemplate
    services = {key[0] for key in logs.templates}
    existing = {(r.service, r.template_id): r for r in db.session.execute(
        select(t.id, t.service, t.template_id, t.first_seen, t.last_seen, t.count)
        .where(t.service.in_(services)))} if services else {}
    changed, added = [], []
    for key, lines in logs.templates.items():
        text = (mem.miner.template(key) or "").replace("\x00", "")[:MAX_TEMPLATE_CHARS]
        first, last = min(r.time for r in lines), max(r.time for r in lines)
        values = {"template": text, "exception": is_exception(text)}
        row = existing.get(key)
        if row is None:
            added.append({"service": key[0], "template_id": key[1], "first_seen": first, "last_seen": last,
                          "count": len(lines), **values})
        else:
            changed.append({"id": row.id, "first_seen": min(row.first_seen, first),
                            "last_seen": max(row.last_seen, last), "count": row.count + len(lines), **values})
    if changed:
        db.session.execute(update(t), changed)
    if added:
        db.session.execute(insert(t), added)


def prune_templates(older_than: float) -> int:
    """Forget templates last seen before ``older_than`` (retention: their lines are gone too; one
    seen again is listed anew). Drain evicts templates it no longer meets, so without this the
    table would only grow."""
    begin_write()
    removed = db.session.execute(delete(LogTemplate).where(LogTemplate.last_seen < older_than)).rowcount
    db.session.commit()
    return removed or 0
