"""What recording one request costs, piece by piece, in process: ``python bench/record_cost.py``.

``bench/overhead.py`` measures the whole under gunicorn; this splits it, in CPU time of this
process (so other load on the machine slows every piece alike), alternated over rounds:

- the lean recorder's WSGI middleware around a trivial WSGI app, against the bare app: the part
  every request pays (context, ids, the row tuple, the buffer's append);
- one ``client_span`` (the demo's call to its gateway is one): a CLIENT span row;
- writing one row: ``SpanBuffer.flush`` of the rows a 0.2 s flush interval gathers at 1,000
  requests/s (400 rows: two spans a request), into a SQLite store with the product's schema
  (random trace ids, so each row touches another page of the ``trace_id`` index).

``GET /inventory`` records two spans (its SERVER span and its CLIENT call to the gateway stub), so
what it pays is the middleware, one client span and two rows.
Options: ``--rounds`` (5), ``--requests`` per round (20,000).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table  # noqa: E402

FLUSH_ROWS = 400


def _bare(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _environ() -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/inventory", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000", "wsgi.url_scheme": "http"}


def _start_response(status, headers, exc_info=None):
    return None


def per_call(fn, n: int) -> float:
    """µs of CPU per call of ``fn``."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()

    from aiops.store.schema import ensure_schema
    from app import create_app
    from telemetry.buffer import SpanBuffer
    from telemetry.db import db
    from telemetry.recorder import LeanRecorder
    from telemetry.rows import ServiceNames
    from telemetry.store import insert_spans

    kept: list[tuple] = []
    # Rows stay queued in memory (never flushed in the timing); emptied between measurements.
    sink = SpanBuffer(kept.extend, flush_interval=3600, max_size=10**8)
    recorder = LeanRecorder(_bare, sink, ServiceNames(own="shop"))
    n = args.requests

    def bare():
        _bare(_environ(), _start_response)

    def recorded():
        recorder(_environ(), _start_response)

    def client():
        with recorder.client_span("stock", "GET", "gateway") as result:
            result["status_code"] = 200

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/aiops.db", "AIOPS_SCHEDULER": False,
                          "AIOPS_RECORD_REQUESTS": False, "AIOPS_NOTIFICATIONS": False})
        with app.app_context():
            ensure_schema()
            engine = db.engine
            for _ in range(FLUSH_ROWS // 2):  # rows as the recorder makes them
                recorded()
                client()
            sink.flush()
            template = kept[:FLUSH_ROWS]
            writes = SpanBuffer(lambda rows: insert_spans(engine, rows), flush_interval=3600)
            serial = [0]

            def write_batch():
                for row in template:  # fresh ids each batch: new keys in the trace index
                    serial[0] += 1
                    writes._queue.append((f"{serial[0]:032x}"[::-1], f"{serial[0]:016x}", *row[2:]))
                writes.flush()

            times: dict[str, list[float]] = {"middleware": [], "client span": [], "one row written": []}
            for _ in range(args.rounds):
                times["middleware"].append(per_call(recorded, n) - per_call(bare, n))
                times["client span"].append(per_call(client, n))
                times["one row written"].append(per_call(write_batch, max(1, n // 2000)) / FLUSH_ROWS)
                assert writes.store_errors == 0 and writes.written, (writes.store_errors, writes.written)
                sink._queue.clear()
    rows = [[name, f"{median(v):.1f}", " ".join(f"{x:.1f}" for x in v)] for name, v in times.items()]
    mid = {name: median(v) for name, v in times.items()}
    inventory = mid["middleware"] + mid["client span"] + 2 * mid["one row written"]
    rows.append(["GET /inventory (middleware + client span + 2 rows)", f"{inventory:.1f}", ""])
    print_table(["piece", "µs CPU (median)", "rounds"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
