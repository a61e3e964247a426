"""The HTML pages in a real browser: headless Chromium against a real gunicorn server.

Chromium loads the page, runs whatever the page would run, and dumps the DOM
it built (``--dump-dom``). The hostile payloads set ``document.title`` if
they ever execute, so the dumped ``<title>`` proves none did, and the element
list proves none became an element.

Skipped when Chromium is not installed, unless ``AIOPS_REQUIRE_CHROMIUM=1``
(as in CI), where that is a failure. ``AIOPS_CHROMIUM`` points at another binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.test_pages import (
    PAYLOADS,
    XSS_CALLEE,
    XSS_CALLER,
    XSS_EXC_MESSAGE,
    XSS_SERVICE,
    Page,
    seed_hostile_incident,
)

pytestmark = pytest.mark.e2e

FORBIDDEN = {"script", "img", "svg", "iframe", "b", "object", "embed"}


def chromium_binary() -> str:
    path = os.environ.get("AIOPS_CHROMIUM", "/usr/bin/chromium")
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found and "AIOPS_CHROMIUM" not in os.environ:
        return found
    reason = f"Chromium not found at {path} (install Debian's chromium, or set AIOPS_CHROMIUM)"
    if os.environ.get("AIOPS_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason}; AIOPS_REQUIRE_CHROMIUM=1 makes this a failure")
    pytest.skip(reason)


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run on ``url`` with a throwaway profile; no network but loopback."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="aiops-chromium-") as profile:
        cmd = [
            binary, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", "--window-size=1280,1600",
            f"--user-data-dir={profile}", *args, url,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def dump_dom(url: str) -> Page:
    html = chromium(url, "--dump-dom").stdout
    assert "<html" in html, html[:500]
    return Page(html)


def screenshot(url: str, path: Path) -> Path:
    chromium(url, f"--screenshot={path}")
    assert path.is_file() and path.stat().st_size > 10_000, path  # a rendered page, not a blank
    return path


def title_of(doc: Page) -> str:
    """The text of ``<title>`` as Chromium left it (a payload that ran would have changed it)."""
    texts = doc.text_in("title")
    assert len(texts) == 1, texts
    return texts[0]


def assert_no_payload_elements(doc: Page) -> None:
    for tag, attrs in doc.tags:
        assert tag not in FORBIDDEN, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert not title_of(doc).startswith("pwned")  # what every payload would set it to


# -- a hostile incident, through the real pipeline -------------------------------------


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A gunicorn server over a database holding an incident built from hostile telemetry."""
    chromium_binary()  # skip before the expensive part
    tmp = tmp_path_factory.mktemp("hostile")
    url = h.sqlite_url(tmp)
    app = make_app(url)
    try:
        incident_id = seed_hostile_incident(app, app.test_client())
    finally:
        dispose_app(app)
    with h.running(tmp, h.shop_env(url)) as server:
        yield server, incident_id, tmp


def test_incident_page_renders_hostile_telemetry_as_text(hostile_server):
    server, incident_id, tmp = hostile_server
    incident = server.get(f"/aiops/incidents/{incident_id}").json()
    doc = dump_dom(f"{server.url}/incidents/{incident_id}")

    assert_no_payload_elements(doc)
    assert title_of(doc) == f"{incident_id} · {incident['title']} · AIOps"
    assert doc.text_in("h1") == [incident["title"]]  # the payload, shown as text
    assert XSS_CALLEE in incident["title"]
    assert doc.text_of(id="root-endpoint") == XSS_CALLEE
    assert doc.text_of(id="root-issue") == incident["root_cause"]["issue"]
    # The waterfall: caller, the call to the callee, the callee; the exception as text.
    rows = doc.elements_with_class("wf-span")
    assert len(rows) == 3
    assert [("wf-culprit" in attrs["class"]) for _, attrs in rows] == [False, True, True]
    assert any(XSS_EXC_MESSAGE in attrs.get("title", "") for _, attrs in doc.tags)
    plain = doc.plain
    for payload in (XSS_SERVICE, XSS_CALLER, XSS_EXC_MESSAGE):
        assert payload in plain, payload
    screenshot(f"{server.url}/incidents/{incident_id}", tmp / "incident-hostile.png")


def test_dashboard_renders_hostile_telemetry_as_text(hostile_server):
    server, incident_id, tmp = hostile_server
    incident = server.get(f"/aiops/incidents/{incident_id}").json()
    doc = dump_dom(server.url + "/")

    assert_no_payload_elements(doc)
    assert title_of(doc) == "(1) Dashboard · AIOps"
    assert incident["title"] in doc.plain
    for payload in (XSS_SERVICE, XSS_CALLER, XSS_CALLEE):
        assert payload in doc.plain, payload
    links = [attrs["href"] for tag, attrs in doc.tags if tag == "a" and "href" in attrs]
    assert f"/incidents/{incident_id}" in links
    assert all(p not in doc.raw for p in PAYLOADS)
    screenshot(server.url + "/", tmp / "dashboard-hostile.png")


# -- a real incident from demo traffic --------------------------------------------------


def test_real_incident_pages_in_the_browser(tmp_path):
    chromium_binary()
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path))) as server:
        h.warm_up(server)
        h.inject(server, "delay", endpoint="payment", duration=600)
        assert h.checkouts(server.url, 12, threads=6) == {200: 12}
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 1, summary
        incident = h.only_incident(server)
        h.assert_root(incident, "payment")

        page = dump_dom(f"{server.url}/incidents/{incident['id']}")
        assert page.text_in("h1") == [incident["title"]]
        assert re.fullmatch(r"payment latency \d+ms \(baseline \d+ms\)", incident["title"])
        assert page.text_of(id="root-endpoint") == "payment"
        assert page.text_of(id="root-issue") == incident["root_cause"]["issue"]
        assert "of the blame lands on payment" in page.text_of(id="evidence")
        labels = [" ".join(t.split()) for t in page.texts_of_class("wf-label")][1:]  # [0]: axis
        # checkout calls inventory, then payment: siblings in start order, each call above its callee
        assert labels == ["shop checkout 200", "shop → inventory 200", "shop inventory 200",
                          "shop → payment 200", "shop payment 200"], labels
        rows = page.elements_with_class("wf-span")
        assert [("wf-culprit" in attrs["class"]) for _, attrs in rows] == [False, False, False, True, True]
        assert "detected" in page.text_of(id="timeline")
        screenshot(f"{server.url}/incidents/{incident['id']}", tmp_path / "incident.png")

        dash = dump_dom(server.url + "/")
        assert title_of(dash) == "(1) Dashboard · AIOps"
        names = dash.texts_of_class("ep-name")
        assert [n for n in names if n in h.DEMO_ENDPOINTS] == ["checkout", "inventory", "payment"], names
        assert incident["title"] in dash.text_of(id="active-incidents")
        assert f"root cause · {incident['id']}" in dash.text_of(id="endpoints")
        refresh = [a for t, a in dash.tags if t == "meta" and a.get("http-equiv") == "refresh"]
        assert refresh == [{"http-equiv": "refresh", "content": "30"}]
        screenshot(server.url + "/", tmp_path / "dashboard.png")
