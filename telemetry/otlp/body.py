"""Reading an OTLP request body: decompressed as it streams, bounded in size and by the process's
in-flight budget. Pure logic (no Flask)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable

from telemetry.otlp.errors import OVERLOADED, OtlpError, Overloaded, PayloadTooLarge

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def read_body(chunks: Iterable[bytes], *, coding: str | None, limit: int,
              reserve: Callable[[int], bool] | None = None) -> bytes:
    """Join a body read in chunks, decompressing it on the way, at most ``limit`` bytes.

    ``coding`` is the Content-Encoding: ``gzip``, ``deflate`` (zlib format, as
    HTTP defines it and the Python exporter sends it) or None. The limit
    applies to the decompressed size and is checked as the data streams, so a
    small "gzip bomb" stops at ``limit`` bytes of output, never fully inflated.
    ``reserve(n)`` is asked for every ``n`` bytes the body grows by (the
    process's in-flight budget); a False raises :class:`Overloaded`.
    Raises :class:`PayloadTooLarge` or :class:`OtlpError`.
    """
    out = _Growing(reserve)
    if coding is None:
        for chunk in chunks:
            out.add(chunk)
            if len(out.data) > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes (AIOPS_OTLP_MAX_BYTES)")
        return bytes(out.data)

    wbits = _WBITS[coding]
    inflater = zlib.decompressobj(wbits)
    seen_input = False
    try:
        for chunk in chunks:
            data = chunk
            seen_input = seen_input or bool(chunk)
            while data:
                # max_length caps what one call may produce (never 0: 0 means no cap).
                out.add(inflater.decompress(data, limit + 1 - len(out.data)))
                if len(out.data) > limit:
                    raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes "
                                          "(AIOPS_OTLP_MAX_BYTES)")
                if inflater.eof:
                    data = inflater.unused_data
                    if data:  # another member follows (concatenated gzip is valid gzip)
                        if coding != "gzip":
                            raise OtlpError(f"body is not valid {coding}: data after the end of the stream")
                        inflater = zlib.decompressobj(wbits)
                else:
                    data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise OtlpError(f"body is not valid {coding}: {exc}") from None
    if seen_input and not inflater.eof:
        raise OtlpError(f"body is not valid {coding}: the stream is truncated")
    return bytes(out.data)


class _Growing:
    """A body being read, asking the in-flight budget for each piece before keeping it."""

    def __init__(self, reserve: Callable[[int], bool] | None):
        self.data = bytearray()
        self.reserve = reserve

    def add(self, piece: bytes) -> None:
        if self.reserve is not None and piece and not self.reserve(len(piece)):
            raise Overloaded(OVERLOADED)
        self.data += piece
