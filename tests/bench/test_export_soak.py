"""The plan and the bookkeeping of ``bench/export_soak.py`` (the soak itself starts servers for
minutes: the lead runs it, see bench/README.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "export_soak.py"
_spec = importlib.util.spec_from_file_location("export_soak_under_test", BENCH)
soak = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = soak  # its dataclass looks its module up
_spec.loader.exec_module(soak)


def test_the_outages_are_spread_evenly_over_the_run():
    assert soak.outage_plan(600, 2, 60) == [(170.0, 230.0), (370.0, 430.0)]
    assert soak.outage_plan(60, 2, 10) == [(15.0, 25.0), (35.0, 45.0)]
    assert soak.outage_plan(60, 0, 10) == []


def test_outages_that_do_not_fit_are_refused():
    with pytest.raises(ValueError):
        soak.outage_plan(60, 3, 30)


def test_turns_overlapping_an_outage_count_as_receiver_down():
    turns = [soak.Turn(started=10.0 + 5 * i, seconds=5.0, requests=100 * (i + 1), errors=0) for i in range(4)]
    soak.mark_down(turns, [(16.0, 21.0)])  # the second and third turns (15-20, 20-25)
    assert [t.down for t in turns] == [False, True, True, False]
    assert soak.rate([t for t in turns if t.down]) == (200 + 300) / 10
