"""Log templates (aiops.logs.mining): drain3 per service, masking, ids that survive a restart."""

from __future__ import annotations

import json
import random
import uuid
import zlib

import pytest
from drain3 import TemplateMiner as Drain3Miner
from drain3.masking import LogMasker, MaskingInstruction

from aiops.logs import mining as logpatterns
from aiops.logs.mining import MASKS, MAX_BODY, TemplateMiner, is_exception, mask


def test_variables_are_masked_and_lines_of_one_kind_share_a_template():
    miner = TemplateMiner()
    a = miner.add("api", "user 4d2a46c7-71cb-4cf1-b5bb-b68406d9da6f paid 42 at 0x7fff trace 81b8fb777a61c172")
    b = miner.add("api", "user 5e3b46c7-71cb-4cf1-b5bb-b68406d9da6f paid 7 at 0x1a2b trace 91c8fb777a61c173")
    assert a.new and not b.new
    assert a.key == b.key
    assert miner.template(a.key) == "user <UUID> paid <NUM> at <HEX> trace <ID>"


def test_services_have_their_own_templates():
    miner = TemplateMiner()
    a = miner.add("api", "connected to db")
    b = miner.add("worker", "connected to db")
    assert a.key != b.key and a.key[0] == "api" and b.key[0] == "worker"


def test_template_ids_are_stable_across_a_restart():
    miner = TemplateMiner()
    first = miner.add("api", "order 17 created")
    other = miner.add("api", "payment failed: card declined")
    again = TemplateMiner(miner.state())
    assert again.add("api", "order 99 created").key == first.key
    assert again.add("api", "payment failed: card declined").key == other.key
    assert not again.add("api", "payment failed: card declined").new


def test_hostile_lines_are_bounded():
    miner = TemplateMiner()
    mined = miner.add("api", "x" * (MAX_BODY * 50))
    assert len(miner.template(mined.key)) <= MAX_BODY


def test_exception_lines_are_recognised():
    assert is_exception("java.lang.IllegalStateException: No instances available")
    assert is_exception("Traceback (most recent call last):")
    assert is_exception("    at com.example.Foo.bar(Foo.java:42)")
    assert not is_exception("order 17 created")


# -- the fast paths give drain3's own results -------------------------------------------------

_WORDS = ["user", "order", "paid", "failed", "<*>", "x", "ms", "(ttl", "key:", "id=", "GET", "/api/v1"]
_ODD = "0123456789abcdefABCDEFxX-+._:/=<>*()\t\n٣²é "  # digits, hex, the masks' punctuation, non-ASCII


def _token(rnd, kind: int | None = None) -> str:
    kind = rnd.randrange(8) if kind is None else kind
    if kind == 0:
        return str(rnd.randrange(-50, 10**6))
    if kind == 1:
        return f"{rnd.getrandbits(64):016x}"
    if kind == 2:
        return str(uuid.UUID(int=rnd.getrandbits(128)))
    if kind == 3:
        return f"{rnd.uniform(0, 999):.{rnd.randrange(3)}f}"
    if kind == 4:
        return ".".join(str(rnd.randrange(300)) for _ in range(4))
    if kind == 5:
        return hex(rnd.getrandbits(rnd.randrange(1, 40)))
    if kind == 6:
        return rnd.choice(_WORDS)  # a word that varies: drain3 makes it <*>
    return "".join(rnd.choice(_ODD) for _ in range(rnd.randrange(12)))


def _stream(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """Lines of a few services: 40 templates of words and variables (numbers, ids, uuids, addresses,
    words), used with Zipf-like frequencies, and 2 % noise (odd characters, odd spacing)."""
    rnd = random.Random(seed)
    shapes = [[rnd.choice(_WORDS) if rnd.random() < 0.6 else rnd.randrange(7)
               for _ in range(rnd.randrange(1, 9))]
              for _ in range(40)]
    out = []
    for _ in range(n):
        shape = shapes[min(int(rnd.expovariate(0.15)), len(shapes) - 1)]
        noisy = rnd.random() < 0.02
        words = [w if isinstance(w, str) else _token(rnd, 7 if noisy else w) for w in shape]
        line = ("  " if noisy else " ").join(words)
        out.append((f"svc{rnd.randrange(3)}", " " + line + " " if noisy else line))
    return out


def test_masking_word_by_word_is_drain3s_masking():
    masker = LogMasker([MaskingInstruction(pattern, name) for pattern, name in MASKS], "<", ">")
    rnd = random.Random(3)
    lines = [line for _, line in _stream(3000)]
    lines += [" ".join(_token(rnd) for _ in range(rnd.randrange(6))) for _ in range(3000)]
    lines += ["", " ", "a  b", "1.2.3.4.5", "-1", "+2.5x", "0x1g", "ab-12345678", "٣٣", "x\n12\n", "12 \t34"]
    for line in lines:
        assert mask(line) == masker.mask(line), line


@pytest.mark.parametrize("max_templates", [1000, 8])  # 8: templates are evicted all the time
def test_the_miner_answers_what_drain3_answers_line_by_line(monkeypatch, max_templates):
    monkeypatch.setattr(logpatterns, "MAX_TEMPLATES", max_templates)
    ours = TemplateMiner()
    theirs: dict[str, Drain3Miner] = {}
    for service, line in _stream(20_000):
        got = ours.add(service, line)
        reference = theirs.setdefault(service, Drain3Miner(None, logpatterns._config()))
        want = reference.add_log_message(line)
        assert (got.key, got.template, got.new) == (
            (service, want["cluster_id"]), want["template_mined"], want["change_type"] == "cluster_created")
    assert ours.hits > (10_000 if max_templates == 1000 else 1_000)  # answered from what was remembered
    # The same state, to the clusters' sizes and their order in the LRU.
    state = ours.state()
    for service, miner in theirs.items():
        assert logpatterns.dump(miner.drain) == state[service]
    saved = TemplateMiner(ours.state())
    assert [saved.add(s, line).key for s, line in _stream(500, seed=8)] == [
        ours.add(s, line).key for s, line in _stream(500, seed=8)]


def test_a_saved_miner_is_plain_json_and_anything_else_is_refused():
    """The state names no Python object (drain3's own snapshot is jsonpickle, which builds whatever a
    stored blob names); a blob that is not ours, or inflates past the bound, is a ValueError."""
    miner = TemplateMiner()
    for line in ("user 1 paid 5", "user 2 paid 7", "disk full on /var"):
        miner.add("shop", line)
    blob = miner.state()["shop"]
    counter, rows = json.loads(zlib.decompress(blob))
    assert counter == 2
    assert sorted(" ".join(r[1]) for r in rows) == ["disk full on /var", "user <NUM> paid <NUM>"]
    again = TemplateMiner({"shop": blob})
    assert again.add("shop", "user 3 paid 9").key == miner.add("shop", "user 3 paid 9").key
    assert again.add("shop", "a line never seen").key[1] == 3  # ids go on from the saved counter
    pickled = zlib.compress(b'{"py/object": "os.system"}')
    for bad in (pickled, zlib.compress(b"[1, [[1, 2, 3]]]"), b"not zlib"):
        with pytest.raises((ValueError, zlib.error)):
            TemplateMiner({"shop": bad})
    with pytest.raises(ValueError):
        logpatterns.load(zlib.compress(b" " * (logpatterns.MAX_STATE_BYTES + 1)))
