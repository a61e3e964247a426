"""Coverage-guided fuzzing of the OTLP decoding path with atheris (libFuzzer).

Run by ``tests/e2e/test_fuzz_atheris.py`` for a bounded
number of inputs, or by hand for as long as you like::

    python tests/support/fuzz_otlp_atheris.py -max_len=65536 -runs=1000000

The invariant is the ingest path's: scan, decode, map, with protobuf, JSON,
gzip and deflate; nothing may raise but :class:`telemetry.otlp.OtlpError`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Load the package and its dependencies (Flask, SQLAlchemy, protobuf) plainly, then
# load the decoding modules again instrumented: coverage where it matters, and a
# start in seconds rather than minutes.
import telemetry  # noqa: E402, F401

_DECODING = [name for name in sys.modules if name == "telemetry.otlp" or name.startswith("telemetry.otlp.")]
for _name in [*_DECODING, "telemetry.otlp_limits"]:
    sys.modules.pop(_name, None)
with atheris.instrument_imports(include=["telemetry"]):
    otlp, otlp_limits = (importlib.import_module(n) for n in ("telemetry.otlp", "telemetry.otlp_limits"))

LIMITS = otlp_limits.Limits(max_records=1_000, max_items=10_000)
CHECKS = otlp.SpanChecks(now=1.7e9, own_services=frozenset({"shop"}))
CODINGS = (None, "gzip", "deflate")


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, coding = data[0] % 2, CODINGS[data[1] % 3]
    body = data[2:]
    try:
        body = otlp.read_body([body], coding=coding, limit=1 << 20)
        if mode == 0:
            otlp_limits.scan_protobuf(body, LIMITS)
            message = otlp.parse(body, otlp.PROTOBUF)
        else:
            message = otlp.parse(body, otlp.JSON) if not body else \
                otlp.parse_json(body, object_hook=otlp_limits.json_object_counter(LIMITS))
    except otlp.OtlpError:
        return
    otlp.to_rows(message, CHECKS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
