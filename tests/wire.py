"""Hand-made OTLP protobuf on the wire, for tests of the decoding limits (no SDK builds these)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def empty_spans(count: int) -> bytes:
    """An ExportTraceServiceRequest of ``count`` empty spans: 2 bytes each on the wire."""
    scope = b"\x12\x00" * count
    resource = b"\x12" + varint(len(scope)) + scope
    return b"\x0a" + varint(len(resource)) + resource
