"""Log templates: what a log line says once its variables are masked. Pure logic.

A service writes a few hundred kinds of line; a fault shows as a kind it never
wrote before, or as one it writes far more often. Counting kinds needs the
kinds: Drain (the ``drain3`` package) mines them online, one miner per service,
after masking what varies (ids, uuids, hex, numbers) with drain3's own masking
instructions rather than a regex per message. The miners' state is persisted
(:meth:`TemplateMiner.state`) so the single worker keeps the same template ids
from cycle to cycle and across restarts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from drain3 import TemplateMiner as Drain3Miner
from drain3.masking import MaskingInstruction
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner_config import TemplateMinerConfig

MAX_BODY = 2000  # characters of a body mined: a hostile 1 MB line costs no more than this
MAX_SERVICES = 500  # miners kept; records of further services get no template
MAX_TEMPLATES = 1000  # per service (drain3 evicts the least recently used beyond this)

# Masks, applied in order (drain3 MaskingInstruction: pattern, name).
_B, _E = r"((?<=[^A-Za-z0-9])|^)", r"((?=[^A-Za-z0-9])|$)"
MASKS = [
    (_B + r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})" + _E, "UUID"),
    (_B + r"(0x[0-9a-fA-F]+)" + _E, "HEX"),
    (_B + r"(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])([0-9a-fA-F]{8,})" + _E, "ID"),
    (_B + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + _E, "IP"),
    (_B + r"([A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})" + _E, "TOKEN"),
    (_B + r"([\-+]?\d+(\.\d+)?)" + _E, "NUM"),
]

# A line that reports an exception or a stack frame, in the usual languages' shapes.
_EXCEPTION = re.compile(
    r"[A-Za-z_][\w.$]*(Exception|Error)\b|Traceback \(most recent call last\)|^\s*at [\w.$<>]+\(|Caused by:|"
    r"\bpanic:|\bexception\b", re.IGNORECASE | re.MULTILINE)

TemplateKey = tuple[str, int]  # (service, drain3 cluster id): stable for the life of the miner state


def is_exception(text: str) -> bool:
    """Does the line (or its template) report an exception or a stack frame?"""
    return bool(_EXCEPTION.search(text[:MAX_BODY]))


def _config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    config.drain_max_clusters = MAX_TEMPLATES
    config.drain_sim_th = 0.5
    config.drain_depth = 5  # two words lead the search: the severity band mined under, then the line's first
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.snapshot_compress_state = True
    return config


class _Held(PersistenceHandler):
    """drain3's persistence interface over one value: the caller stores it where it likes."""

    def __init__(self, state: bytes | None = None):
        self.state = state

    def save_state(self, state):
        self.state = state

    def load_state(self):
        return self.state


@dataclass(frozen=True)
class Mined:
    key: TemplateKey
    template: str
    new: bool  # this line created the template


class TemplateMiner:
    """One drain3 miner per service, with state that survives a restart."""

    def __init__(self, state: dict[str, bytes] | None = None):
        self._miners: dict[str, Drain3Miner] = {}
        for service, blob in (state or {}).items():
            miner = Drain3Miner(_Held(blob), _config())
            miner.persistence_handler = None  # saved on demand (state()), not on every new template
            self._miners[service] = miner

    def _miner(self, service: str) -> Drain3Miner | None:
        miner = self._miners.get(service)
        if miner is None and len(self._miners) < MAX_SERVICES:
            miner = self._miners[service] = Drain3Miner(None, _config())
        return miner

    def add(self, service: str, body: str) -> Mined | None:
        """Mine one line of ``service``: its template (created when new), or None past the bounds."""
        miner = self._miner(service)
        if miner is None:
            return None
        found = miner.add_log_message(body[:MAX_BODY])
        return Mined((service, int(found["cluster_id"])), found["template_mined"],
                     found["change_type"] == "cluster_created")

    def template(self, key: TemplateKey) -> str | None:
        miner = self._miners.get(key[0])
        cluster = miner.drain.id_to_cluster.get(key[1]) if miner else None
        return cluster.get_template() if cluster else None

    def state(self) -> dict[str, bytes]:
        """Every service's miner state (drain3 snapshots, compressed), to store and pass back."""
        return self.state_of(self._miners)

    def state_of(self, services: Iterable[str]) -> dict[str, bytes]:
        """The miner state of ``services`` only (those with a miner): what changed since a save."""
        out = {}
        for service in services:
            miner = self._miners.get(service)
            if miner is None:
                continue
            held = _Held()
            miner.persistence_handler = held
            try:
                miner.save_state("persist")
            finally:
                miner.persistence_handler = None
            out[service] = held.state
        return out
