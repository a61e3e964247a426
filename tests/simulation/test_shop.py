"""The demo's calls between its endpoints survive a kept-alive connection the server dropped.

A raw socket server on loopback plays gunicorn closing an idle keep-alive
connection just as the client reuses it: the second request on a connection
is read and the connection closed unanswered.
"""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from simulation import shop


class DroppingServer:
    """Answers the first request on each connection, then drops it on the next (or never answers)."""

    def __init__(self, answer: bool = True):
        self.answer = answer
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/x"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            conn.recv(65536)
            if not self.answer:
                conn.recv(65536)  # hold the request unanswered until the client gives up
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}")
            conn.recv(65536)  # the next request on this connection: closed unanswered

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    s = DroppingServer()
    yield s
    s.close()


def test_a_dropped_kept_alive_connection_is_retried_once_on_a_new_one(server):
    shop._local.session = requests.Session()
    assert shop._send("GET", server.url, None, {}, 2).status_code == 200
    with pytest.raises(requests.ConnectionError) as plain:  # what a bare reuse would do
        shop._http().request("GET", server.url, timeout=2)
    assert shop._dropped(plain.value)
    for _ in range(3):
        assert shop._send("POST", server.url, {"amount": 1}, {}, 2).status_code == 200


def test_timeouts_and_refused_connections_are_not_retried():
    shop._local.session = requests.Session()
    silent = DroppingServer(answer=False)
    try:
        with pytest.raises(requests.Timeout):
            shop._send("GET", silent.url, None, {}, 0.3)
        assert silent.connections == 1
    finally:
        silent.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/x"  # bound, not listening: refused
        with pytest.raises(requests.ConnectionError) as refused:
            shop._send("GET", closed, None, {}, 1)
    assert not shop._dropped(refused.value)
