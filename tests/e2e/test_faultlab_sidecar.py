"""The fault lab's sidecar proxy, as its own process, against real servers on loopback.

A "service" (an HTTP/1.1 keep-alive server that notes when each request
reached it and can call a "callee") sits behind the sidecar: callers use the
ingress port, the service's own calls use the egress port. No check bounds a
time from above: a delay is checked as a lower bound (a delay cannot make
things faster), and the side that must not be delayed is checked against a
delay of an hour, by getting through at all.
"""

from __future__ import annotations

import json
import queue
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench.faultlab import control
from tests.e2e.server import ROOT, free_port
from tests.support import environment

DELAY = 0.6  # seconds: far above loopback noise, so a delay shows as one
HOLD = 3600.0  # seconds: an answer held this long does not come back while a test looks
WAIT = 30.0  # seconds to wait for what a HOLD does not delay: a guard against hanging, far below HOLD


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with the monotonic time the request arrived, on a kept-alive connection,
    and puts the path on the server's ``arrivals`` queue."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"arrived": time.monotonic()}).encode()
        self.server.arrivals.put(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


def serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.arrivals = queue.Queue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One sidecar process for service "svc" (an HTTP server) calling "callee" (one too) and "echo"."""
    app, callee = serve(Recorder), serve(Recorder)
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    echo.daemon_threads = True
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    plan = {
        "svc": {"app": app.server_address[1], "ingress": free_port(), "control": free_port(),
                "sidecar_control": free_port(), "egress": {"callee": free_port(), "echo": free_port()}},
        "callee": {"ingress": callee.server_address[1]},
        "echo": {"ingress": echo.server_address[1]},
    }
    path = tmp_path_factory.mktemp("sidecar") / "ports.json"
    path.write_text(json.dumps(plan))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.faultlab.sidecar", "--plan", str(path), "--name", "svc"], cwd=ROOT,
        env=environment.clean())
    port = plan["svc"]["sidecar_control"]
    deadline = time.monotonic() + 20
    while True:
        try:
            control.ask(port, {"op": "ping"}, timeout=1)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "sidecar did not start"
            time.sleep(0.05)
    yield {**plan["svc"], "arrivals": app.arrivals}
    proc.terminate()
    proc.wait(timeout=10)
    for server in (app, callee, echo):
        server.shutdown()


@pytest.fixture
def sidecar(lab):
    control.ask(lab["sidecar_control"], {"op": "clear"})
    yield lab
    control.ask(lab["sidecar_control"], {"op": "clear"})


def fault(sidecar, kind: str, **params) -> None:
    assert control.ask(sidecar["sidecar_control"], {"op": "set", "kind": kind, "params": params})["ok"]


def timed_get(session: requests.Session, port: int, timeout: float = 10.0) -> tuple[float, float, float]:
    """(sent, arrived at the server, answered) monotonic times of one GET through ``port``."""
    sent = time.monotonic()
    arrived = session.get(f"http://127.0.0.1:{port}/x", timeout=timeout).json()["arrived"]
    return sent, arrived, time.monotonic()


def test_without_a_fault_traffic_passes_both_ways(sidecar):
    with requests.Session() as s:
        for port in (sidecar["ingress"], sidecar["egress"]["callee"]):
            sent, arrived, answered = timed_get(s, port)
            assert sent <= arrived <= answered


def arrived(sidecar, path: str) -> bool:
    """The service saw a request for ``path`` (waiting up to WAIT for it)."""
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            if sidecar["arrivals"].get(timeout=left) == path:
                return True
        except queue.Empty:
            break
    return False


def test_answer_delay_holds_the_answer_and_neither_the_request_nor_the_services_own_calls(sidecar):
    fault(sidecar, "delay", ms=HOLD * 1000, jitter_ms=0, scope="answers")
    path = f"/held-{uuid.uuid4().hex}"
    with socket.create_connection(("127.0.0.1", sidecar["ingress"]), timeout=WAIT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
        assert arrived(sidecar, path), "the request itself must not be delayed"
        sock.settimeout(1.0)  # a lower bound: nothing comes back for a while, however loaded the machine
        with pytest.raises(TimeoutError):
            sock.recv(1)
    # Closing the connection drops the held answer. The service's own calls are not answers: they pass.
    answer = requests.get(f"http://127.0.0.1:{sidecar['egress']['callee']}/x", timeout=WAIT)
    assert answer.status_code == 200, "the service's own calls are untouched in the answers scope"


def test_answer_delay_holds_every_answer_on_a_kept_alive_connection(sidecar):
    fault(sidecar, "delay", ms=DELAY * 1000, jitter_ms=0, scope="answers")
    with requests.Session() as s:
        for _ in range(3):  # one connection: the delay is per request, not per connect
            sent, arrived_at, answered = timed_get(s, sidecar["ingress"])
            assert sent <= arrived_at and answered - arrived_at >= DELAY


def test_delay_on_all_traffic_also_holds_the_services_own_calls(sidecar):
    fault(sidecar, "delay", ms=DELAY * 1000, jitter_ms=0, scope="all")
    with requests.Session() as s:
        sent, arrived, answered = timed_get(s, sidecar["egress"]["callee"])
        assert arrived - sent >= DELAY, "the outgoing request is held"
        sent, arrived, answered = timed_get(s, sidecar["ingress"])
        assert answered - arrived >= DELAY, "answers are held too"


def test_jittered_delay_keeps_the_byte_order(sidecar):
    fault(sidecar, "delay", ms=30, jitter_ms=25, scope="all")
    payload = bytes(range(256)) * 4096  # 1 MiB in many chunks, each held a different time
    with socket.create_connection(("127.0.0.1", sidecar["egress"]["echo"]), timeout=20) as sock:
        threading.Thread(target=sock.sendall, args=(payload,), daemon=True).start()
        echoed = b""
        while len(echoed) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            echoed += chunk
    assert echoed == payload


def test_reset_answers_a_request_with_an_rst(sidecar):
    fault(sidecar, "reset", share=1.0)
    with pytest.raises(requests.ConnectionError) as error:
        requests.get(f"http://127.0.0.1:{sidecar['ingress']}/x", timeout=5)
    assert "reset" in repr(error.value).lower()


def test_loss_swallows_the_request_and_the_caller_times_out(sidecar):
    fault(sidecar, "loss", share=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"http://127.0.0.1:{sidecar['ingress']}/x", timeout=0.5)


def test_a_share_of_resets_hits_some_requests_not_all(sidecar):
    fault(sidecar, "reset", share=0.5)
    outcomes = []
    for _ in range(40):
        try:
            requests.get(f"http://127.0.0.1:{sidecar['ingress']}/x", timeout=5)
            outcomes.append("ok")
        except requests.ConnectionError:
            outcomes.append("reset")
    assert 0 < outcomes.count("reset") < 40


def test_refuse_is_a_service_that_is_down_until_cleared(sidecar):
    url = f"http://127.0.0.1:{sidecar['ingress']}/x"
    with requests.Session() as kept:
        kept.get(url, timeout=5)
        fault(sidecar, "refuse")
        with pytest.raises(requests.ConnectionError):  # the open connection is reset ...
            kept.get(url, timeout=5)
        with pytest.raises(requests.ConnectionError, match="(?i)refused"):  # ... and new ones refused
            requests.get(url, timeout=5)
    control.ask(sidecar["sidecar_control"], {"op": "clear"})
    assert requests.get(url, timeout=5).status_code == 200


def test_bad_control_messages_change_nothing(sidecar):
    port = sidecar["sidecar_control"]
    assert control.ask(port, {"op": "set", "kind": "meteor"})["ok"] is False
    assert control.ask(port, {"op": "set", "kind": "delay", "params": {"scope": "sideways"}})["ok"] is False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"not json\n")
        assert b'"ok": false' in sock.recv(4096)
    assert requests.get(f"http://127.0.0.1:{sidecar['ingress']}/x", timeout=5).status_code == 200
