"""What goes wrong with an OTLP request, as the status it is answered with."""

from __future__ import annotations


class OtlpError(ValueError):
    """The payload cannot be decoded: the whole request is bad (HTTP 400)."""


class PayloadTooLarge(OtlpError):
    """The (decompressed) payload is over the configured limit (HTTP 413)."""


class Overloaded(OtlpError):
    """The process is decoding all it may at once (HTTP 503: the exporter retries later)."""


OVERLOADED = "the server is decoding all it may at once (AIOPS_OTLP_INFLIGHT_BYTES); retry later"
