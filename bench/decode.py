"""CPU per span of turning an OTLP protobuf body into rows, in process: ``python bench/decode.py``.

The SDK's 512-span batch (``bench/ingest.py``'s, 113 KB) goes through what ``POST /v1/traces``
does between reading the body and storing the rows, two ways, in alternated rounds:

- ``scanned``: the wire scan (:func:`telemetry.otlp_limits.scan_protobuf`), then the decoder,
  then the mapping: what every body got before, and what a body over ``DIRECT_MAX`` still gets;
- ``direct``: the size bound (:func:`telemetry.otlp_limits.unscanned_items`), the decoder, the
  records counted on the message, the mapping: what a body up to ``DIRECT_MAX`` gets now.

Process CPU time, so another process on the machine slows both alike.
Options: ``--rounds`` (6), ``--batches`` per round (40).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table  # noqa: E402
from ingest import BATCH, ExportTraceServiceRequest, _sdk_spans, encode_spans  # noqa: E402

from telemetry import otlp, otlp_limits  # noqa: E402

LIMITS = otlp_limits.Limits(50_000, 500_000)  # the defaults


def scanned(body: bytes):
    otlp_limits.scan_protobuf(body, LIMITS)
    return otlp.to_rows(otlp.parse(body, otlp.PROTOBUF, ExportTraceServiceRequest))


def direct(body: bytes):
    assert otlp_limits.unscanned_items(len(body), LIMITS) is not None
    message = otlp.parse(body, otlp.PROTOBUF, ExportTraceServiceRequest)
    assert sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans) <= LIMITS.max_records
    return otlp.to_rows(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    body = encode_spans(_sdk_spans("frontend", BATCH)).SerializeToString()
    print(f"one batch: {BATCH} spans, {len(body):,} bytes")
    times: dict[str, list[float]] = {"scanned": [], "direct": []}
    for _ in range(args.rounds):
        for name, path in (("scanned", scanned), ("direct", direct)):
            start = time.process_time()
            for _ in range(args.batches):
                assert len(path(body).rows) == BATCH
            times[name].append((time.process_time() - start) / args.batches / BATCH * 1e6)
    print_table(["path", "us CPU per span (median)", "rounds"],
                [[name, f"{median(v):.1f}", " ".join(f"{x:.1f}" for x in v)] for name, v in times.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
