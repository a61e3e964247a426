"""Settings as people read them: ``docs/configuration.md``, generated from the fields
(``python -m aiops.settings > docs/configuration.md``; a test fails when the two drift apart), and
URLs printed with their secrets masked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import fields
from urllib.parse import urlsplit

from aiops.settings.declare import SECTIONS
from aiops.settings.fields import Settings


def _shown(f: dataclasses.Field) -> str:
    if f.metadata["shown"]:
        return f.metadata["shown"]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "`1`" if default else "`0`"
    if isinstance(default, tuple):
        return "`" + ",".join(default) + "`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def _sections() -> Iterator[tuple[str, list[dataclasses.Field]]]:
    order: dict[str, list[dataclasses.Field]] = {section: [] for section in SECTIONS}
    for f in fields(Settings):
        order[f.metadata["section"]].append(f)
    yield from ((section, members) for section, members in order.items() if members)


def reference() -> str:
    """``docs/configuration.md``: every setting, its default and meaning, by section."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from aiops/settings/fields.py by `python -m aiops.settings > docs/configuration.md`;"
        " do not edit. -->",
        "",
        "Every setting is an environment variable, read once when the app is created",
        "(`create_app`). A bad value stops the start with an error naming the variable.",
        "Tests pass a configuration to `create_app`, which then replaces the environment.",
        "",
    ]
    for section, members in _sections():
        lines += [f"## {section}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{f.metadata['env']}` | {_shown(f)} | {f.metadata['doc']} |" for f in members]
        lines.append("")
    lines += [
        "Not settings of the app, but read by its processes:",
        "",
        "| variable | meaning |",
        "| --- | --- |",
        "| `PROMETHEUS_MULTIPROC_DIR` | where gunicorn's workers and the worker process keep the values "
        "`GET /metrics` adds up (default: one every process derives from the instance folder and the "
        "database, in the temporary directory; see [operations.md](operations.md#prometheus-metrics)) |",
        "",
    ]
    return "\n".join(lines)


def masked_url(url: str | None) -> str:
    """A URL safe to print: its password, query and fragment replaced by ``***``.

    ``postgresql+psycopg://aiops:pw@db:5432/aiops`` -> ``postgresql+psycopg://aiops:***@db:5432/aiops``.
    Anything unparsable is masked whole.
    """
    if not url:
        return str(url)
    text = str(url)
    head, hashmark, _ = text.partition("#")
    head, question, _ = head.partition("?")
    tail = ("?***" if question else "") + ("#***" if hashmark else "")
    try:
        netloc = urlsplit(head).netloc
    except ValueError:
        return "***"
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        head = head.replace(netloc, f"{user}:***@{hostport}" if colon else f"***@{hostport}", 1)
    return head + tail
