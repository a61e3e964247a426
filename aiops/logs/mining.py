"""Log templates: what a log line says once its variables are masked. Pure logic.

A service writes a few hundred kinds of line; a fault shows as a kind it never
wrote before, or as one it writes far more often. Counting kinds needs the
kinds: Drain (the ``drain3`` package) mines them online, one miner per service,
after masking what varies (ids, uuids, hex, numbers) with drain3's own masking
instructions rather than a regex per message. The miners' state is persisted
(:meth:`TemplateMiner.state`) so the single worker keeps the same template ids
from cycle to cycle and across restarts.

A cycle mines every new line, so the per-line cost is kept low without
changing a single result (``tests/logs/test_mining.py`` checks line by line,
and the saved state, against drain3 itself):

- masking is drain3's, applied word by word (:func:`mask`): no mask can match
  a space or reach across one, and a space is a boundary for every mask, so
  masking each space-separated word is masking the line (and the same holds
  for the pieces of a word between ``:``, ``(``, ``=`` and the like); plain
  words, numbers, hex ids and uuids skip the regexes, and other words are
  remembered (bounded);
- a masked line that drain3 just matched to a template *without changing
  anything* matches the same template again as long as nothing in that
  service's miner changed (no template created, changed or evicted): drain3's
  tree search is a function of the templates alone. Such lines are
  remembered per service and only counted on a repeat (the cluster's size
  and its place in the LRU, as drain3 does); any change forgets them.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from drain3 import TemplateMiner as Drain3Miner
from drain3.drain import Drain, LogCluster
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

MAX_BODY = 2000  # characters of a body mined: a hostile 1 MB line costs no more than this
MAX_STATE_BYTES = 64 * 1024 * 1024  # a saved miner inflates to no more than this
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

# The same masks without the alternations around them ("not after/before a letter or digit" is what
# "after a non-alnum or at the start" means): half the cost, the same matches.
_SUBS = [(re.compile(r"(?<![A-Za-z0-9])" + pattern[len(_B) : -len(_E)] + r"(?![A-Za-z0-9])").sub, f"<{name}>")
         for pattern, name in MASKS]
# Whole words whose masking is known without the chain (each is what the chain makes of it: a
# number has no hex letter, a hex id no "x", "-" or ".", a uuid is masked first).
_NUMBER = re.compile(r"[\-+]?[0-9]+(\.[0-9]+)?").fullmatch
_HEX_ID = re.compile(r"[0-9a-fA-F]{8,}").fullmatch  # not all letters (words) nor all digits (numbers)
_UUID = re.compile(MASKS[0][0][len(_B) : -len(_E)]).fullmatch
# Characters no mask matches and every mask takes for a boundary (not a letter, digit, "_", "-", "+"
# or "."): a word is masked piece by piece between them, as a line is word by word.
_PIECES = re.compile(r"([^A-Za-z0-9_+.\-\d]+)").split
MAX_WORDS = 100_000  # masked words remembered (then forgotten all at once)
MAX_SEEN = 50_000  # masked lines remembered with their template, over all services
_words: dict[str, str] = {}


def _mask_word(word: str) -> str:
    """One word (or piece of one) masked: known shapes at once, others through the masks, remembered."""
    if _NUMBER(word):
        return "<NUM>"
    if _HEX_ID(word):
        return "<ID>"
    if _UUID(word):
        return "<UUID>"
    if not word or word.isalpha():
        return word
    pieces = _PIECES(word)
    if len(pieces) > 1:  # "key:3f2a..." is "key", ":" and an id
        masked = "".join([p if n % 2 else _words.get(p) or _mask_word(p) for n, p in enumerate(pieces)])
    else:
        masked = word
        for sub, name in _SUBS:
            masked = sub(name, masked)
    if len(_words) >= MAX_WORDS:
        _words.clear()
    _words[word] = masked
    return masked


def mask(line: str) -> str:
    """``line`` with its variables masked: what drain3's masker makes of it with :data:`MASKS`."""
    known = _words.get
    return " ".join([w if w.isalpha() else known(w) or _mask_word(w) for w in line.split(" ")])


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
    return config


@dataclass(frozen=True)
class Mined:
    key: TemplateKey
    template: str
    new: bool  # this line created the template


class _Service:
    """One service's drain3 miner, the masked lines it matched without a change (each with its
    cluster and the answer), and the clusters those lines touched since drain3 last ran."""

    __slots__ = ("miner", "drain", "seen", "touched")

    def __init__(self, miner: Drain3Miner):
        self.miner, self.drain = miner, miner.drain
        self.seen: dict[str, tuple] = {}
        self.touched: list[int] = []

    def catch_up(self) -> None:
        """Move the touched clusters up drain3's LRU, as drain3 would have line by line: the order
        only matters when drain3 runs (it evicts on a new template) or its state is saved."""
        if self.touched:
            lru = self.drain.id_to_cluster
            for cluster_id in reversed(dict.fromkeys(reversed(self.touched))):  # by last touch
                lru[cluster_id]  # noqa: B018 - a read moves it up
            self.touched.clear()


class TemplateMiner:
    """One drain3 miner per service, with state that survives a restart."""

    def __init__(self, state: dict[str, bytes] | None = None):
        self._services: dict[str, _Service] = {}
        self._seen_count = 0  # masked lines remembered over all services
        self.hits = 0  # lines answered from what was remembered
        for service, blob in (state or {}).items():
            self._services[service] = _Service(load(blob))

    def _service(self, service: str) -> _Service | None:
        found = self._services.get(service)
        if found is None and len(self._services) < MAX_SERVICES:
            found = self._services[service] = _Service(Drain3Miner(None, _config()))
        return found

    def add(self, service: str, body: str) -> Mined | None:
        """Mine one line of ``service``: its template (created when new), or None past the bounds.

        The same as drain3's ``add_log_message`` (masking, then the tree), faster on repeats."""
        svc = self._services.get(service) or self._service(service)
        if svc is None:
            return None
        masked = mask(body[:MAX_BODY])
        again = svc.seen.get(masked)
        if again is not None:
            cluster, mined = again
            self.hits += 1
            cluster.size += 1  # what drain3 does on a match that changes nothing
            svc.touched.append(cluster.cluster_id)
            return mined
        svc.catch_up()
        cluster, change = svc.drain.add_log_message(masked)
        mined = Mined((service, cluster.cluster_id), cluster.get_template(), change == "cluster_created")
        if change == "none":
            if self._seen_count >= MAX_SEEN:
                for other in self._services.values():
                    other.seen.clear()
                self._seen_count = 0
            svc.seen[masked] = (cluster, mined)
            self._seen_count += 1
        elif svc.seen:  # the service's templates changed: what was remembered may match otherwise now
            self._seen_count -= len(svc.seen)
            svc.seen.clear()
        return mined

    def template(self, key: TemplateKey) -> str | None:
        svc = self._services.get(key[0])
        cluster = svc.drain.id_to_cluster.get(key[1]) if svc else None  # get(): the LRU stays as it is
        return cluster.get_template() if cluster else None

    def state(self) -> dict[str, bytes]:
        """Every service's templates (:func:`dump`), to store and pass back."""
        return self.state_of(list(self._services))

    def state_of(self, services: Iterable[str]) -> dict[str, bytes]:
        """The templates of ``services`` only (those with a miner): what changed since a save."""
        out = {}
        for service in services:
            svc = self._services.get(service)
            if svc is not None:
                svc.catch_up()
                out[service] = dump(svc.drain)
        return out


def _lru_order(cache) -> list:
    """The cache's keys, least recently used first, read without moving any (cachetools keeps the
    order in its private ``__order``; without it, insertion order)."""
    order = getattr(cache, "_LRUCache__order", None)
    return list(order) if order is not None else list(cache)


def dump(drain: Drain) -> bytes:
    """A miner's templates as zlib-compressed JSON: ``[counter, [[id, tokens, size], ...]]``, least
    recently used first: all drain3 needs to go on where it stopped. Not drain3's own snapshot,
    which is jsonpickle: decoding that builds whatever objects the stored bytes name."""
    clusters = drain.id_to_cluster
    found = ((cid, clusters.get(cid)) for cid in _lru_order(clusters))  # drain3's get() moves nothing
    rows = [[cid, list(c.log_template_tokens), c.size] for cid, c in found if c is not None]
    return zlib.compress(json.dumps([drain.clusters_counter, rows], separators=(",", ":")).encode())


def load(blob: bytes) -> Drain3Miner:
    """A miner with the templates :func:`dump` wrote; ValueError for anything else (bounded: a
    blob inflating past ``MAX_STATE_BYTES`` is refused)."""
    inflate = zlib.decompressobj()
    raw = inflate.decompress(blob, MAX_STATE_BYTES)
    if inflate.unconsumed_tail:
        raise ValueError("log miner state too large")
    counter, rows = json.loads(raw)
    if not isinstance(counter, int) or not isinstance(rows, list):
        raise ValueError("not a log miner state")
    miner = Drain3Miner(None, _config())
    drain = miner.drain
    for cid, tokens, size in rows:
        if not (isinstance(cid, int) and isinstance(size, int) and isinstance(tokens, list)
                and all(isinstance(t, str) for t in tokens)):
            raise ValueError("not a log miner state")
        cluster = LogCluster(tokens, cid)
        cluster.size = size
        drain.id_to_cluster[cid] = cluster
        drain.add_seq_to_prefix_tree(drain.root_node, cluster)
    drain.clusters_counter = max(counter, max((r[0] for r in rows), default=0))
    return miner
