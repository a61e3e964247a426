"""The parsed query: a small tree of frozen dataclasses, plain data with no parser in it.

A :class:`Query` is a tree of spanset operations (``&&``, ``||`` between ``{ }``) whose leaves are
:class:`Spanset` filters; a filter's condition is a tree of :class:`And`, :class:`Or` and
:class:`Comparison`. Every comparison has already been checked (its field exists, its value has
the field's type, a regex compiled and was found safe), so evaluating never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NIL = None  # the literal ``nil``: a missing attribute


@dataclass(frozen=True)
class Field:
    """What a comparison reads from a span.

    ``scope`` is ``span``, ``resource``, ``event`` or ``""`` (unscoped ``.attr``: span, then
    resource) for attributes, ``intrinsic`` for ``name``, ``status``, ``duration``, ``kind`` and
    the ``span:``/``trace:`` intrinsics (``name`` holds the canonical intrinsic, ``span:name`` ->
    ``name``, ``trace:duration`` -> ``trace:duration``).
    """

    scope: str
    name: str

    @property
    def intrinsic(self) -> bool:
        return self.scope == "intrinsic"

    def __str__(self) -> str:
        if self.intrinsic:
            return self.name
        return f"{self.scope}.{self.name}"


@dataclass(frozen=True)
class Status:
    """A status literal: ``error``, ``ok`` or ``unset``."""

    value: str


@dataclass(frozen=True)
class Kind:
    """A kind literal: ``unspecified``, ``internal``, ``server``, ``client``, ``producer``, ``consumer``."""

    value: str


@dataclass(frozen=True)
class Duration:
    """A duration literal, in milliseconds (the store's unit)."""

    ms: float


Value = str | int | float | bool | None | Status | Kind | Duration | re.Pattern


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # one of OPERATORS
    value: Value


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Always:
    """The empty filter ``{ }`` (and ``{ true }``): every span."""


Condition = Comparison | And | Or | Always


@dataclass(frozen=True)
class Spanset:
    """``{ condition }``: the spans of a trace the condition holds for."""

    condition: Condition


@dataclass(frozen=True)
class Both:
    """``A && B``: the trace has spans matching A and spans matching B; both sets are returned."""

    left: Query
    right: Query


@dataclass(frozen=True)
class Either:
    """``A || B``: the spans matching A or B."""

    left: Query
    right: Query


Query = Spanset | Both | Either

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "=~", "!~")
