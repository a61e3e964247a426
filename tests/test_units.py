"""The house rule on the size of units: no product module over 400 lines, no function over 60.

A unit that size is read whole, and its name can say what it does. What grows past the
limit is split by meaning (see the second house issue), never cut where the count falls.
The product is ``app.py``, ``aiops/``, ``telemetry/`` and ``simulation/``; database
migrations are left out (each is a record of one change), and so are the benches and tests.
At the top of ``tests/``: it walks every package at once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("aiops", "telemetry", "simulation")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60



def _modules() -> list[Path]:
    found = [ROOT / "app.py"]
    for package in PACKAGES:
        found += [p for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts]
    return found


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines from ``def`` to its last line) of every function, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _oversized() -> dict[str, str]:
    """Every unit over its limit: ``path`` (a module) or ``path:function``, with its size."""
    found = {}
    for path in _modules():
        source = path.read_text()
        name = path.relative_to(ROOT).as_posix()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found[name] = f"{name}: module of {lines} lines (limit {MAX_MODULE_LINES})"
        for function, size in _functions(ast.parse(source, filename=name)):
            if size > MAX_FUNCTION_LINES:
                found[f"{name}:{function}"] = (f"{name}: {function}() is {size} lines "
                                               f"(limit {MAX_FUNCTION_LINES})")
    return found


def test_no_unit_is_over_its_limit():
    over = _oversized()
    assert not over, "split these by meaning:\n" + "\n".join(sorted(over.values()))


def test_the_walk_sees_the_product():
    """The rule cannot pass by looking at nothing: the walk finds the modules and their functions."""
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"app.py", "aiops/jobs/cycle.py", "telemetry/otlp/spans.py", "simulation/shop.py"} <= names
    assert not any("migrations" in n for n in names)
    cycle = ast.parse((ROOT / "aiops/jobs/cycle.py").read_text())
    assert "run_cycle" in dict(_functions(cycle))
