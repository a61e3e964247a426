"""The vendored browser libraries: exactly the pinned files, served by the app, none from a CDN."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from tests.conftest import sqlite_only

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "static" / "vendor"


def _refresh():
    spec = importlib.util.spec_from_file_location("vendor_refresh", VENDOR / "refresh.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_on_disk_are_the_ones_fetched():
    assert _refresh().check() == []


def test_manifest_lists_every_pinned_file_at_its_pinned_version():
    refresh = _refresh()
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    wanted = {f"{name}/{Path(f).name}": pin["version"]
              for name, pin in refresh.PACKAGES.items() for f in pin["files"]}
    assert {path: entry["version"] for path, entry in manifest.items()} == wanted
    for name in refresh.PACKAGES:  # each ships under its MIT licence, kept beside it
        assert "Permission is hereby granted" in (VENDOR / name / "LICENSE").read_text()


def test_check_notices_an_edited_file(tmp_path, monkeypatch):
    refresh = _refresh()
    copy = tmp_path / "uplot"
    copy.mkdir()
    (copy / "LICENSE").write_text("edited")
    monkeypatch.setattr(refresh, "HERE", tmp_path)
    monkeypatch.setattr(refresh, "MANIFEST", VENDOR / "MANIFEST.json")
    problems = refresh.check()
    assert "uplot/LICENSE: changed since it was fetched (1.6.32)" in problems
    assert "cytoscape/cytoscape.min.js: missing" in problems


def test_no_template_loads_from_another_origin():
    for page in (ROOT / "templates").glob("*.html"):
        text = page.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), page.name


@sqlite_only
def test_the_app_serves_the_vendored_files(client):
    answer = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert answer.status_code == 200
    assert answer.data == (VENDOR / "uplot" / "uPlot.iife.min.js").read_bytes()
    assert "javascript" in answer.content_type
