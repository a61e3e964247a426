"""The README's screenshots, from a real demo run: ``.venv/bin/python docs/screenshots.py [PAGE ...]``.

Starts the demo as deployed (gunicorn and a worker, on a SQLite file in a temporary folder), drives
checkouts until the baselines are learned, injects a 3 s delay on ``payment``, drives more
checkouts (so that ``checkout`` is slow too, as in tests/e2e/test_faults.py), runs a detection
cycle, and screenshots the pages named (``dashboard``, ``incident``, ``map``; all three by default)
with headless Chromium into ``docs/img/<page>.png``. Each page is shot once its script has drawn it
(the incident's charts and the map of its propagation path, the service map), over the DevTools
protocol; the incident page down to its map. Needs Debian's ``chromium`` (or ``AIOPS_TEST_CHROMIUM``).
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import helpers as h  # noqa: E402
from tests.e2e.test_pages import Browser  # noqa: E402

PAGES = ("dashboard", "incident", "map")
WIDTH, MAX_HEIGHT = 1280, 3200
# When each page is drawn (its scripts fetch and lay out after the load event), and how far down it
# is shot: the incident page down to the map of its path, the others whole.
READY = {
    "dashboard": "true",
    "incident": "!!(document.querySelector('#root-chart[data-points]') && window.aiopsMap"
                " && aiopsMap.data.path)",
    "map": "!!(window.aiopsMap && aiopsMap.cy.nodes().length)",
}
BOTTOM = {
    "dashboard": "document.querySelector('main').getBoundingClientRect().bottom + scrollY",
    "incident": "document.getElementById('path-map-card').getBoundingClientRect().bottom + scrollY + 16",
    "map": "document.querySelector('main').getBoundingClientRect().bottom + scrollY",
}


def shoot(tab, url: str, page: str, out: Path) -> Path:
    tab.send("Emulation.setDeviceMetricsOverride",
             {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    tab.navigate(url)
    deadline = time.monotonic() + 30
    while not tab.evaluate(READY[page]):
        assert time.monotonic() < deadline, f"{page}: never drawn"
        time.sleep(0.2)
    time.sleep(0.5)  # the last layout's paint
    height = min(int(tab.evaluate(BOTTOM[page])), MAX_HEIGHT)
    shot = tab.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}})
    out.write_bytes(base64.b64decode(shot["data"]))
    return out


def main(pages: list[str]) -> int:
    unknown = set(pages) - set(PAGES)
    if unknown:
        print(f"unknown pages: {', '.join(sorted(unknown))} (choose from {', '.join(PAGES)})",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="aiops-screenshots-") as tmp:
        folder = Path(tmp)
        with h.running(folder, h.shop_env(h.sqlite_url(folder))) as server, Browser() as browser:
            h.warm_up(server)
            h.inject(server, "delay", endpoint="payment", duration=3000)
            h.checkouts(server.url, 8, threads=8)
            h.analyze(server)
            incident = h.only_incident(server)
            urls = {"dashboard": "/", "incident": f"/incidents/{incident['id']}", "map": "/map"}
            tab = browser.new_tab()
            for page in pages:
                out = shoot(tab, server.url + urls[page], page, ROOT / "docs" / "img" / f"{page}.png")
                print(f"{page}: {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(PAGES)))
