"""Repairing strings in OTLP payloads, so one bad string never costs its batch. Pure logic.

The official protobuf decoder refuses a whole request when one string field
holds invalid UTF-8 (trace and logs requests alike), and ``json_format`` refuses a lone surrogate
(``"\\ud800"``) anywhere; a 400 is never retried by exporters, so every
valid span or log record beside the bad string would be lost. Here such strings become
U+FFFD instead. The protobuf repair decodes with a copy of the OTLP messages
whose ``string`` fields are declared ``bytes`` (the same wire format, no UTF-8
check), fixes those fields and re-encodes; it only runs when the strict
decoder failed.
"""

from __future__ import annotations

import functools
import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _files_in_order(file) -> list:
    """``file`` and the .proto files it imports, each after its own imports."""
    order: list = []

    def visit(f) -> None:
        if f not in order:
            for dep in f.dependencies:
                visit(dep)
            order.append(f)

    visit(file)
    return order


@functools.cache
def _lenient_request(message_type):
    """``message_type`` with every ``string`` field declared ``bytes`` (same wire format),
    and the full names of those fields: decoding it never checks UTF-8."""
    pool = descriptor_pool.DescriptorPool()
    strings: set[str] = set()

    def loosen(messages, prefix: str) -> None:
        for message in messages:
            for fd in message.field:
                if fd.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                    fd.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                    strings.add(f"{prefix}.{message.name}.{fd.name}")
            loosen(message.nested_type, f"{prefix}.{message.name}")

    for file in _files_in_order(message_type.DESCRIPTOR.file):
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        loosen(proto.message_type, proto.package)
        pool.Add(proto)
    name = message_type.DESCRIPTOR.full_name
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name)), frozenset(strings)


def repair_utf8(body: bytes, message_type=ExportTraceServiceRequest) -> bytes | None:
    """``body`` (a ``message_type``: a trace or logs request) with every invalid UTF-8 sequence in
    a string field replaced by U+FFFD (None if it is not even a well-formed message)."""
    lenient, strings = _lenient_request(message_type)
    try:
        message = lenient.FromString(body)
    except (DecodeError, RecursionError, ValueError):
        return None
    todo = [message]
    while todo:
        msg = todo.pop()
        for fd, value in msg.ListFields():
            if fd.message_type is not None:
                todo.extend(value if _repeated(fd) else (value,))
            elif fd.full_name in strings:
                if _repeated(fd):
                    value[:] = [v.decode("utf-8", "replace").encode() for v in value]
                else:
                    setattr(msg, fd.name, value.decode("utf-8", "replace").encode())
    return message.SerializeToString()


def _repeated(fd) -> bool:
    repeated = getattr(fd, "is_repeated", None)  # protobuf >= 5.29; ``label`` before (gone in 7)
    return repeated if repeated is not None else fd.label == fd.LABEL_REPEATED


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_surrogates(node):
    """Every string in a decoded JSON document with lone surrogates replaced by U+FFFD."""
    if isinstance(node, str):
        return _SURROGATE.sub("\ufffd", node)
    if isinstance(node, list):
        return [repair_surrogates(item) for item in node]
    if isinstance(node, dict):
        return {repair_surrogates(k): repair_surrogates(v) for k, v in node.items()}
    return node
