"""One service of the topology as its own process, traced with the official OpenTelemetry SDK.

    python -m bench.faultlab.service --topology shop.toml --plan ports.json --name catalog \
        --otlp http://127.0.0.1:5000/v1/traces

A small threaded Flask app (werkzeug's server, HTTP/1.1 keep-alive) serving the
service's endpoints. ``opentelemetry-instrumentation-flask`` makes the SERVER
spans (an unhandled exception becomes an exception event, status ERROR and a
500), ``opentelemetry-instrumentation-requests`` the CLIENT spans and the W3C
``traceparent`` of every outgoing call; spans leave through a
``BatchSpanProcessor`` and the OTLP/HTTP protobuf exporter, resource
``service.name`` = the service name. Every outgoing call goes to this
service's own sidecar (one egress port per callee), and its CLIENT span gets
``peer.service`` = the callee, as the semantic conventions say.

Own faults are switched on the untraced control port (see ``control.py``):
``exception`` (the endpoint raises), ``slow`` (more own work in one endpoint),
``wrong`` (200 with an incomplete body) and ``cpu`` (busy threads with a duty
cycle: the whole process slows down, every endpoint).
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import threading
import time

import requests
from flask import Flask, jsonify
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from werkzeug.serving import WSGIRequestHandler, make_server

from bench.faultlab import control, ports
from bench.faultlab import topology as topo
from bench.faultlab.runtime_metrics import runtime_metrics

MAX_ITEMS = 20  # items an answer carries; fan-out must not grow bodies without bound


class Faults:
    """This service's own fault switches, set from the control port and read by every request."""

    KEYS = {"exception": ("endpoint", "rate"), "slow": ("endpoint", "ms"), "wrong": ("endpoint", "rate"),
            "cpu": ("duty", "threads")}

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[str, dict] = {}
        self.hog_stop = threading.Event()
        self.hogs: list[threading.Thread] = []

    def handle(self, message: dict) -> dict:
        op = message.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "clear":
            self.clear()
            return {"ok": True}
        if op == "set":
            kind, params = message["kind"], message.get("params", {})
            if kind not in self.KEYS or set(params) - set(self.KEYS[kind]):
                raise ValueError(f"unknown fault {kind!r} or parameters {sorted(params)}")
            with self.lock:
                self.active[kind] = dict(params)
            if kind == "cpu":
                self._start_hog(float(params.get("duty", 0.7)), int(params.get("threads", 1)))
            return {"ok": True, "active": self.active}
        raise ValueError(f"unknown op {op!r}")

    def clear(self) -> None:
        with self.lock:
            self.active.clear()
        self.hog_stop.set()
        for t in self.hogs:
            t.join(timeout=2)
        self.hogs = []

    def get(self, kind: str, endpoint: str) -> dict | None:
        with self.lock:
            fault = self.active.get(kind)
        if fault and fault.get("endpoint") in (None, endpoint):
            return fault
        return None

    def _start_hog(self, duty: float, threads: int) -> None:
        """Busy threads that compute ``duty`` of every 100 ms and sleep the rest, bounded to one core.

        They compute in slices of about 10 ms that never let go of the GIL (a C loop
        checks no switch interval), so this process's request threads wait for
        the CPU the way a container's threads wait when a hog eats its CPU quota:
        every endpoint slows, self time grows, and the machine keeps its other core.
        """
        duty = min(max(duty, 0.05), 0.95)
        self.hog_stop = stop = threading.Event()
        n = _slice_size(0.010)

        def burn() -> None:
            while not stop.is_set():
                end = time.perf_counter() + 0.1 * duty
                while time.perf_counter() < end:
                    sum(range(n))  # one slice, GIL held throughout
                stop.wait(0.1 * (1 - duty))

        self.hogs = [threading.Thread(target=burn, name=f"faultlab-cpu-hog-{i}", daemon=True)
                     for i in range(min(max(threads, 1), 4))]
        for t in self.hogs:
            t.start()


def _slice_size(seconds: float) -> int:
    """How many numbers ``sum(range(n))`` adds in about ``seconds`` on this machine."""
    n = 100_000
    start = time.perf_counter()
    sum(range(n))
    took = max(time.perf_counter() - start, 1e-6)
    return max(int(n * seconds / took), 1000)


def compute(ms: float) -> None:
    """Real CPU work (a hash-like loop), so a CPU hog in this process makes it slower."""
    end = time.perf_counter() + ms / 1000.0
    x = 1
    while time.perf_counter() < end:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


class Caller:
    """Outgoing calls through this service's sidecar, with a session per thread (kept-alive)."""

    def __init__(self, topology: topo.Topology, egress: dict[str, int]):
        self.topology = topology
        self.egress = egress
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def call(self, call: topo.Call) -> int:
        """Call ``call``'s endpoint and check the answer the way a client library would:
        a non-2xx status or a body without ``items`` and ``count`` raises."""
        endpoint = self.topology.services[call.service].endpoints[call.endpoint]
        url = f"http://127.0.0.1:{self.egress[call.service]}{endpoint.path}"
        response = self.session().request(endpoint.method, url, timeout=self.topology.timeout_s(call.service))
        response.raise_for_status()
        body = response.json()
        if not isinstance(body["items"], list):
            raise TypeError(f"{call.service} answered items of type {type(body['items']).__name__}")
        return int(body["count"])


def _absorbed(caller: Caller, call: topo.Call) -> int:
    """A best-effort call: its failure is absorbed (the CLIENT span shows it; the caller answers)."""
    try:
        return caller.call(call)
    except requests.RequestException:  # a wrong answer (no items) is not absorbed: the caller breaks
        return 0


def build_app(topology: topo.Topology, name: str, caller: Caller, faults: Faults) -> Flask:
    service = topology.services[name]
    app = Flask(f"faultlab-{name}")
    rng = random.Random()

    def view_for(ep: topo.Endpoint):
        def view():
            work = ep.work_ms + rng.uniform(-ep.jitter_ms, ep.jitter_ms)
            slow = faults.get("slow", ep.name)
            if slow:
                work += float(slow["ms"])
            time.sleep(max(work, 0.0) / 1000.0)
            compute(ep.cpu_ms)
            failing = faults.get("exception", ep.name)
            if failing and rng.random() < float(failing.get("rate", 1.0)):
                raise RuntimeError(f"{ep.name}: could not read {name} record {rng.randrange(10_000)}")
            count = 1
            for call in ep.calls:
                for _ in range(call.repeat):
                    if call.p >= 1.0 or rng.random() < call.p:
                        count += caller.call(call) if not call.best_effort else _absorbed(caller, call)
            wrong = faults.get("wrong", ep.name)
            if wrong and rng.random() < float(wrong.get("rate", 1.0)):
                return jsonify({"service": name, "endpoint": ep.name, "status": "partial"})
            items = [{"id": rng.randrange(100_000), "source": name} for _ in range(min(count, MAX_ITEMS))]
            return jsonify({"service": name, "endpoint": ep.name, "items": items, "count": count})

        view.__name__ = ep.name.replace("-", "_")
        return view

    for ep in service.endpoints.values():
        app.add_url_rule(ep.path, endpoint=ep.name, view_func=view_for(ep), methods=[ep.method])
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    return app


def tracing(name: str, otlp: str, egress: dict[str, int]) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp, timeout=10),
                                                   schedule_delay_millis=500, max_queue_size=8192))
    trace_calls(provider, egress)
    return provider


def trace_calls(provider: TracerProvider, egress: dict[str, int]) -> None:
    """CLIENT spans and ``traceparent`` for every ``requests`` call, ``peer.service`` from the port."""
    callee_of_port = {port: callee for callee, port in egress.items()}

    def name_the_peer(span, request) -> None:
        port = requests.utils.urlparse(request.url).port
        if port in callee_of_port and span.is_recording():
            span.set_attribute("peer.service", callee_of_port[port])

    RequestsInstrumentor().instrument(tracer_provider=provider, request_hook=name_the_peer)


class QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 (keep-alive, like a production server) and no access log per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", required=True)
    parser.add_argument("--plan", required=True, help="the lab's ports.json")
    parser.add_argument("--name", required=True)
    parser.add_argument("--otlp", required=True, help="OTLP/HTTP traces URL of the product")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {args.name} %(levelname)s %(message)s")

    topology = topo.load(args.topology)
    mine = ports.read(args.plan)[args.name]
    provider = tracing(args.name, args.otlp, mine["egress"])
    meters = runtime_metrics(args.name, args.otlp)  # CPU and memory, to the product's /v1/metrics
    faults = Faults()
    app = build_app(topology, args.name, Caller(topology, mine["egress"]), faults)
    app.logger.disabled = True  # the exception is on the span; a traceback per request would flood the log
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider, excluded_urls="healthz")
    try:
        server = make_server("127.0.0.1", mine["app"], app, threaded=True, request_handler=QuietHandler)
        control.serve_in_thread(mine["control"], faults.handle)
    except OSError as exc:
        sys.exit(f"{args.name}: cannot listen on port {mine['app']} or {mine['control']}: {exc}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the finally below flushes the spans
    try:
        server.serve_forever()
    finally:
        provider.shutdown()
        meters.shutdown()


if __name__ == "__main__":
    main()
