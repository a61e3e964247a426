"""Steady open-loop traffic into the entry endpoints, the whole run long.

Open loop (requests start on a Poisson schedule whatever the answers do), as
real users arrive: a slow system does not get less traffic. Requests go to the
entry services' sidecars, untraced (the entry's SERVER span is the root), each
with a timeout. A bounded pool does the sending; when every sender is busy the
request is counted as ``skipped`` instead of queueing without bound.
"""

from __future__ import annotations

import collections
import queue
import random
import threading
import time

import requests

from bench.faultlab.topology import Topology


class Load:
    def __init__(self, topology: Topology, plan: dict, rate: float, seed: int, senders: int = 32):
        self.rate = rate
        self.rng = random.Random(seed)
        self.targets = []
        for service, endpoint, share in topology.entries():
            ep = topology.services[service].endpoints[endpoint]
            url = f"http://127.0.0.1:{plan[service]['ingress']}{ep.path}"
            self.targets.append((ep.method, url, share, topology.timeout_s(service) + 2.0))
        self.weights = [share for _, _, share, _ in self.targets]
        self.todo: queue.Queue = queue.Queue(maxsize=senders)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.tally: collections.Counter = collections.Counter()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(senders)]
        self.threads.append(threading.Thread(target=self._schedule, daemon=True))

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=15)

    def counts(self) -> dict:
        """Answers so far by status code (or exception name), and ``skipped``."""
        with self.lock:
            return dict(self.tally)

    def _schedule(self) -> None:
        due = time.monotonic()
        while not self.stop_event.is_set():
            due += self.rng.expovariate(self.rate)
            if (wait := due - time.monotonic()) > 0:
                self.stop_event.wait(wait)
            target = self.rng.choices(self.targets, self.weights)[0]
            try:
                self.todo.put_nowait(target)
            except queue.Full:
                with self.lock:
                    self.tally["skipped"] += 1

    def _send(self) -> None:
        session = requests.Session()
        while not self.stop_event.is_set():
            try:
                method, url, _, timeout = self.todo.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                with session.request(method, url, timeout=timeout) as response:
                    code: int | str = response.status_code
            except requests.RequestException as exc:
                code = type(exc).__name__
            with self.lock:
                self.tally[code] += 1
        session.close()
