"""The HTML pages in a real browser: headless Chromium against a real gunicorn server.

Chromium loads the page, runs whatever the page would run, and dumps the DOM
it built (``--dump-dom``). The hostile payloads set ``document.title`` if
they ever execute, so the dumped ``<title>`` proves none did, and the element
list proves none became an element.

Acknowledging from the page is driven like a user would: Chromium over the
DevTools protocol on a pipe (``Browser``: no extra package), typing into the
form and clicking its button; a page on another origin tries the same with
forms of its own and is refused.

Skipped when Chromium is not installed, unless ``AIOPS_TEST_REQUIRE_CHROMIUM=1``
(as in CI), where that is a failure. ``AIOPS_TEST_CHROMIUM`` points at another binary.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from markupsafe import escape

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.support import environment
from tests.support.factories import add_incident
from tests.support.hostile_pages import (
    FORBIDDEN_TAGS,
    HOSTILE_NAME,
    OUR_SCRIPTS,
    PAYLOADS,
    XSS_CALLEE,
    XSS_CALLER,
    XSS_EXC_MESSAGE,
    XSS_LOG_BODY,
    XSS_SERVICE,
    Page,
    seed_hostile_incident,
    seed_trace_logs,
)

pytestmark = pytest.mark.e2e


def chromium_binary() -> str:
    path = os.environ.get("AIOPS_TEST_CHROMIUM", "/usr/bin/chromium")
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found and "AIOPS_TEST_CHROMIUM" not in os.environ:
        return found
    reason = f"Chromium not found at {path} (install Debian's chromium, or set AIOPS_TEST_CHROMIUM)"
    if environment.flag("REQUIRE_CHROMIUM"):
        pytest.fail(f"{reason}; AIOPS_TEST_REQUIRE_CHROMIUM=1 makes this a failure")
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


# Chromium reads DevTools commands from fd 3 and writes to fd 4; this re-numbers the pipe ends.
_PIPE_EXEC = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
             "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); os.execv(sys.argv[3], sys.argv[3:])"


class Browser:
    """Headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``).

    For what ``--dump-dom`` cannot do: type into a page and click its buttons
    as a user does. Messages are NUL-terminated JSON on two pipes; one tab
    (``Tab``) at a time is enough here.
    """

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="aiops-chromium-")
        to_chrome, self._w = os.pipe()
        self._r, from_chrome = os.pipe()
        # Above 10, so putting them on 3 and 4 in the child never overwrites one with the other.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome, from_chrome)]
        os.close(to_chrome)
        os.close(from_chrome)
        cmd = [
            sys.executable, "-c", _PIPE_EXEC, str(ends[0]), str(ends[1]), chromium_binary(),
            "--headless", "--remote-debugging-pipe", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--window-size=1280,1600", f"--user-data-dir={self._profile.name}",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(cmd.index("--headless"), "--no-sandbox")
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=ends, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        finally:
            for fd in ends:
                os.close(fd)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (AssertionError, OSError, TimeoutError, EOFError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            os.close(fd)
        self.proc.stderr.close()
        self._profile.cleanup()

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no message from Chromium in time")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError(f"Chromium exited: {self.proc.stderr.read()[-2000:]!r}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """One command; events that arrive meanwhile are kept in ``events``."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)["params"]
            self.events.append(self._read(deadline))

    def new_tab(self) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        return Tab(self, session)


class Tab:
    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def _loaded_after(self, action) -> None:
        """Run ``action`` (which starts a navigation) and wait for the new page's load event."""
        self.browser.events = [e for e in self.browser.events if e.get("method") != "Page.loadEventFired"]
        action()
        self.browser.wait_event("Page.loadEventFired", self.session)

    def navigate(self, url: str) -> None:
        self._loaded_after(lambda: self.send("Page.navigate", {"url": url}))

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type ``text`` as keyboard input."""
        assert self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " if (!e) return false; e.focus(); return true; })()"), selector
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element; waits for the page it leads to."""
        x, y = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        mouse = {"x": x, "y": y, "button": "left", "clickCount": 1}

        def press() -> None:
            self.send("Input.dispatchMouseEvent", {"type": "mousePressed", **mouse})
            self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", **mouse})

        self._loaded_after(press)

    def location(self) -> str:
        return self.evaluate("location.href")

    def document(self) -> Page:
        return Page(self.evaluate("document.documentElement.outerHTML"))

    def cookies(self) -> list[dict]:
        return self.send("Network.getCookies")["cookies"]


@contextmanager
def other_site(pages: dict[str, str]):
    """A web server on another port: another origin, serving ``pages`` (path -> HTML)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "not found").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def title_of(doc: Page) -> str:
    """The text of ``<title>`` as Chromium left it (a payload that ran would have changed it)."""
    texts = doc.text_in("title")
    assert len(texts) == 1, texts
    return texts[0]


def assert_no_payload_elements(doc: Page) -> None:
    for tag, attrs in doc.tags:
        if tag == "script" and attrs.get("src") in OUR_SCRIPTS:
            continue  # the charts' own files
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
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
        seed_trace_logs(app, app.test_client(), incident_id)  # and log lines of its trace, one hostile
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
    for payload in (XSS_SERVICE, XSS_CALLER, XSS_EXC_MESSAGE, XSS_LOG_BODY):
        assert payload in plain, payload
    # The span that logged ERROR/WARN lines is marked and lists them; the trace's lines follow.
    assert doc.texts_of_class("wf-logs") == ["2 logs"]
    assert doc.texts_of_class("wf-log")[-1] == f"ERROR {XSS_LOG_BODY}"
    assert len(doc.texts_of_class("trace-log")) == 4
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
        # (each calls the demo's external peer, seen only through that CLIENT span)
        assert labels == ["shop checkout 200", "shop → inventory 200", "shop inventory 200",
                          "shop → gateway stock 200", "shop → payment 200", "shop payment 200 1 log",
                          "shop → gateway charge 200"], labels
        # payment logged the fault as a WARN (the demo's own logs): marked on its span, listed under it
        [warned] = page.texts_of_class("wf-log")
        assert warned == "WARN payment: slow backend, 600 ms spent waiting", warned
        assert any("slow backend" in line for line in page.texts_of_class("trace-log"))
        rows = page.elements_with_class("wf-span")
        culprit = [("wf-culprit" in attrs["class"]) for _, attrs in rows]
        assert culprit == [False, False, False, False, True, True, False], rows
        assert "detected" in page.text_of(id="timeline")
        report = incident["report"]
        assert report["summary"] and " ".join(report["summary"].split()) in page.text_of(id="report")
        listed = re.search(r'<ol class="recommendations">(.*?)</ol>', page.raw, re.S)
        assert Page(listed.group(1)).text_in("li") == [" ".join(r.split()) for r in report["recommendations"]]
        assert [a.get("id") for t, a in page.tags if t == "button"] == ["acknowledge", "resolve"]
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


# -- acknowledging from the page, and a cross-site page trying to ------------------------


def _auto_post(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items())
    return (f'<!doctype html><title>evil</title><form method="post" action="{escape(action)}">{inputs}</form>'
            "<script>document.forms[0].submit()</script>")


def test_acknowledge_in_the_browser_and_cross_site_forms_refused(tmp_path):
    chromium_binary()
    url = h.sqlite_url(tmp_path)
    app = make_app(url)
    try:
        iid = add_incident(app, "INC-1700000000-1")
    finally:
        dispose_app(app)
    # No AIOPS_API_TOKEN: the configuration a cross-site form could once resolve incidents in.
    with h.running(tmp_path, h.shop_env(url)) as server, Browser() as browser:
        page_url = f"{server.url}/incidents/{iid}"
        tab = browser.new_tab()
        tab.navigate(page_url)
        doc = tab.document()
        assert [a.get("id") for t, a in doc.tags if t == "button"] == ["acknowledge", "resolve"]
        (cookie,) = [c for c in tab.cookies() if c["name"] == "aiops_csrf"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert cookie["session"] and not cookie["secure"]

        # Another origin on the same host (so the same site: the Strict cookie is sent along)
        # posts forms at the JSON API and at the page's own route; both are refused.
        pages = {
            "/api": _auto_post(f"{server.url}/aiops/incidents/{iid}/resolve", {}),
            "/page": _auto_post(f"{page_url}/resolve", {"csrf": "x" * 43, "by": "mallory"}),
        }
        with other_site(pages) as evil:
            tab.navigate(evil + "/api")
            assert tab.location() == f"{server.url}/aiops/incidents/{iid}/resolve"
            assert json.loads(tab.evaluate("document.body.innerText")) == {
                "error": "Forbidden", "message": "cross-site request refused"}
            tab.navigate(evil + "/page")
            assert tab.location() == f"{page_url}/resolve"
            assert tab.document().text_in("h1") == ["403 Forbidden"]
        incident = server.get(f"/aiops/incidents/{iid}").json()
        assert (incident["status"], incident["timeline"]) == ("open", [])

        # The user types a name (hostile, to see it shown as text) and a comment, and clicks.
        tab.navigate(page_url)
        tab.type_into("input[name=by]", HOSTILE_NAME)
        tab.type_into("input[name=comment]", "rolling back payment")
        tab.click("#acknowledge")
        assert tab.location() == page_url + "?done=acknowledged"
        doc = tab.document()
        assert_no_payload_elements(doc)
        assert doc.text_of(id="notice") == "Incident acknowledged."
        assert doc.texts_of_class("status") == ["acknowledged"]
        assert f"acknowledged by {HOSTILE_NAME}: rolling back payment" in doc.text_of(id="timeline")
        assert [a.get("id") for t, a in doc.tags if t == "button"] == ["resolve"]
        incident = server.get(f"/aiops/incidents/{iid}").json()
        assert incident["status"] == "acknowledged"
        assert [(e["event"], e["by"], e["detail"]) for e in incident["timeline"]] == [
            ("acknowledged", HOSTILE_NAME, "rolling back payment")]

        # Resolve with the name left empty: recorded as "web"; no buttons are left.
        tab.click("#resolve")
        doc = tab.document()
        assert doc.text_of(id="notice") == "Incident resolved."
        assert doc.texts_of_class("status") == ["resolved"]
        assert not any(t in ("form", "button") for t, _ in doc.tags)
        incident = server.get(f"/aiops/incidents/{iid}").json()
        assert incident["status"] == "resolved" and incident["timeline"][-1]["by"] == "web"
