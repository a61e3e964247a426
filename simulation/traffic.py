"""Steady demo traffic: ``python -m simulation.traffic --url http://127.0.0.1:5000``.

Sends ``POST /checkout`` from a few threads at a target rate, for a bounded
time, and prints a status-code tally every few seconds, so you can watch a
fault land and then see the incident on the dashboard.
"""

from __future__ import annotations

import argparse
import collections
import threading
import time

import requests


def run(url: str, rate: float, duration: float, threads: int = 4, timeout: float = 15.0,
        report_every: float = 5.0, quiet: bool = False) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    per_thread = rate / threads

    def worker() -> None:
        session = requests.Session()
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            try:
                code = str(session.post(url.rstrip("/") + "/checkout", json={"amount": 10},
                                        timeout=timeout).status_code)
            except requests.RequestException as exc:
                code = type(exc).__name__
            with lock:
                counts[code] += 1
            next_at += 1.0 / per_thread
            time.sleep(max(0.0, next_at - time.monotonic()))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    last = time.monotonic()
    while any(t.is_alive() for t in pool):
        time.sleep(0.2)
        if not quiet and time.monotonic() - last >= report_every:
            last = time.monotonic()
            with lock:
                print("checkout:", dict(counts), flush=True)
    if not quiet:
        print("done:", dict(counts), flush=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--rate", type=float, default=10.0, help="checkouts per second (10)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (120)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    run(args.url, args.rate, args.duration, args.threads)


if __name__ == "__main__":
    main()
