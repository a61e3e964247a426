"""The README's screenshots, from a real demo run: ``.venv/bin/python docs/screenshots.py [PAGE ...]``.

Starts the demo as deployed (gunicorn and a worker, on a SQLite file in a temporary folder), drives
checkouts until the baselines are learned, injects a 1.5 s delay on ``payment``, drives more
checkouts, runs a detection cycle, and screenshots the pages named (``dashboard``, ``incident``,
``map``; all three by default) with headless Chromium into ``docs/img/<page>.png``. Needs Debian's
``chromium`` (or ``AIOPS_TEST_CHROMIUM``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import helpers as h  # noqa: E402
from tests.e2e.test_pages import screenshot  # noqa: E402

PAGES = ("dashboard", "incident", "map")


def main(pages: list[str]) -> int:
    unknown = set(pages) - set(PAGES)
    if unknown:
        print(f"unknown pages: {', '.join(sorted(unknown))} (choose from {', '.join(PAGES)})",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="aiops-screenshots-") as tmp:
        folder = Path(tmp)
        with h.running(folder, h.shop_env(h.sqlite_url(folder))) as server:
            h.warm_up(server)
            h.inject(server, "delay", endpoint="payment", duration=1500)
            h.checkouts(server.url, 12, threads=6)
            h.analyze(server)
            incident = h.only_incident(server)
            urls = {"dashboard": "/", "incident": f"/incidents/{incident['id']}", "map": "/map"}
            for page in pages:
                out = screenshot(server.url + urls[page], ROOT / "docs" / "img" / f"{page}.png")
                print(f"{page}: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(PAGES)))
