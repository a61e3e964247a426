"""The service map's cost against the spans stored: ``python bench/map.py``.

Builds two SQLite stores of the synthetic traces of ``bench/detect.py`` (20 services, 200
endpoints, 5-span traces calling across services), one with ``--spans`` (1,000,000) and one with a
tenth of that, written at 2,000 spans/s of data clock ending ten minutes ago: most of them lie in
the default 15-minute range (the worst case for it), all of them in ``?since=7d``. Then times,
in-process through the Flask test client and alternated over ``--rounds`` (5), each request the
page makes:

- ``GET /aiops/map`` (the default 15 minutes) and ``?since=7d``;
- ``GET /map`` (the page: the same map, rendered);
- ``GET /aiops/map`` with the ETag of the last answer: the poll between two cycles (a 304).

The map reads at most :data:`telemetry.span_sample.MAX_SPANS` spans of any range, so the big
store should cost what the small one does (ratio ~1.0); the target is 300 ms for the page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, verdict  # noqa: E402
from detect import Store, TraceMaker  # noqa: E402

TARGET_MS = 300.0


def timed(client, path: str, headers: dict | None = None) -> tuple[float, object]:
    t0 = time.perf_counter()
    response = client.get(path, headers=headers or {})
    ms = (time.perf_counter() - t0) * 1000
    assert response.status_code in (200, 304), (path, response.status_code, response.data[:300])
    return ms, response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spans", type=int, default=1_000_000)
    args = parser.parse_args()
    big, small = args.spans, args.spans // 10
    if small < 30_000:
        parser.error("--spans must be at least 300000 (the small store holds a tenth; Store needs 30,000)")
    cases = [("GET /aiops/map", "/aiops/map", False),
             ("GET /aiops/map?since=7d", "/aiops/map?since=7d", False),
             ("GET /map (page)", "/map", False),
             ("GET /aiops/map, ETag unchanged (304)", "/aiops/map", True)]
    with tempfile.TemporaryDirectory(prefix="aiops-bench-map-") as tmp:
        print("building the stores ...", flush=True)
        # Store() keeps 20,000 spans for two learning cycles, appended after the bulk load.
        stores = {size: Store(Path(tmp), f"s{size}", size, TraceMaker(1)) for size in (big, small)}
        times = {(size, label): [] for size in stores for label, *_ in cases}
        notes = {}
        for n in range(1, args.rounds + 1):
            for size, store in stores.items():
                client = store.app.test_client()
                tag = None
                for label, path, conditional in cases:
                    headers = {"If-None-Match": tag} if conditional and tag else None
                    ms, response = timed(client, path, headers)
                    if path == "/aiops/map":
                        tag = response.headers["ETag"]
                    times[(size, label)].append(ms)
                    if response.is_json:
                        body = response.get_json()
                        notes[(size, label)] = (f"{len(body['nodes'])} nodes, {len(body['edges'])} edges, "
                                                f"{body['spans_read']:,} spans read")
                    elif response.status_code == 304:
                        notes[(size, label)] = "304"
            print(f"  round {n}: " + ", ".join(f"{times[k][-1]:.0f}" for k in times) + " ms", flush=True)

    med = {key: median(values) for key, values in times.items()}
    print()
    print_table(["store", "request", "median ms", "min ms", "max ms", "answer"],
                [[f"{size:,} spans", label, f"{med[(size, label)]:.0f}", f"{min(times[(size, label)]):.0f}",
                  f"{max(times[(size, label)]):.0f}", notes.get((size, label), "page")]
                 for size in stores for label, *_ in cases])
    print()
    for label, *_ in cases:
        print(f"{label}: {med[(big, label)] / med[(small, label)]:.2f}x the time with 10x the spans "
              "(1.0 = independent of the store)")
    page = med[(big, "GET /map (page)")]
    print(f"target <= {TARGET_MS:.0f} ms for the page with {big:,} spans: {verdict(page <= TARGET_MS)} "
          f"({page:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
