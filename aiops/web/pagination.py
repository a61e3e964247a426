"""Page sizes and opaque cursors for the list endpoints (pure: strings in, plain data out).

A cursor is a position in a list ordered newest first, as ``(time, id)`` of
the last row a page showed, so the next page starts strictly after it
(keyset pagination: one indexed range scan, no OFFSET that re-reads what was
skipped). Clients never build one: they pass back the ``next`` value a page
gave them. It is base64url JSON, so it is easy to debug but checked like any
input: anything that is not a cursor this server could have given out is a
:class:`ValueError` with a message for the user.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

MAX_CURSOR_CHARS = 1024
MAX_ID_CHARS = 255

Position = tuple[float, "str | int"]


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """``?limit=``: a plain decimal 1..maximum (``int()`` would also take ``1_000``, `` 5`` and ``+5``)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"'limit' must be an integer between 1 and {maximum}, not {raw[:40]!r}")
    value = int(raw)
    if not 1 <= value <= maximum:
        raise ValueError(f"'limit' must be between 1 and {maximum}, not {value}")
    return value


def encode(positions: dict[str, Position | None]) -> str:
    """A cursor for the named lists' positions (None: that list has no more rows)."""
    data = {name: None if pos is None else [pos[0], pos[1]] for name, pos in positions.items()}
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, names: tuple[str, ...], id_type: type) -> dict[str, Position | None]:
    """The positions in ``cursor``, which must name exactly ``names``; ValueError otherwise."""
    bad = ValueError("'cursor' is not a cursor this server gave out: pass back the 'next' value of a page")
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != set(names):
        raise bad
    out: dict[str, Position | None] = {}
    for name in names:
        pos = data[name]
        if pos is None:
            out[name] = None
            continue
        if not (isinstance(pos, list) and len(pos) == 2):
            raise bad
        at, key = pos
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise bad
        if isinstance(key, bool) or not isinstance(key, id_type):
            raise bad
        if isinstance(key, str) and len(key) > MAX_ID_CHARS:
            raise bad
        if isinstance(key, int) and not -(2**63) <= key < 2**63:
            raise bad
        out[name] = (float(at), key)
    return out
