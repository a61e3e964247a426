"""A service's sidecar: a small asyncio TCP proxy that makes network faults the way tc netem would.

    python -m bench.faultlab.sidecar --plan ports.json --name catalog

This machine's kernel has no netem, so each service gets its own proxy process,
like a service-mesh sidecar in its pod: the *ingress* listener is the
service's address for every caller and forwards to the service's own port;
one *egress* listener per callee carries the service's own outgoing calls to
that callee's ingress. A process per service (not one for all) keeps a fault
in one sidecar from slowing another service's traffic, and it lives and dies
with its service.

Faults (set on the untraced control port, one at a time, see ``Faults``):

- ``delay`` with ``scope = "answers"``: every chunk of bytes the service sends
  back to its callers is held ``ms`` (+/- ``jitter_ms``), in order. Its own
  calls are untouched (a delay on the service's listening port).
- ``delay`` with ``scope = "all"``: every byte the service sends is held,
  answers and its own outgoing requests alike (netem on the pod's interface
  delays what leaves it).
- ``reset``: each request chunk from a caller is, with probability ``share``,
  answered by a TCP RST (SO_LINGER 0) on the caller's connection.
- ``loss``: each request chunk is, with probability ``share``, swallowed, and
  that connection never answers again (the caller times out).
- ``refuse``: the service is down: the ingress stops listening (connection
  refused) and open connections are reset.

Delays apply per chunk, not per connection, so requests on kept-alive
connections are delayed too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import socket
import struct
import sys

from bench.faultlab import control, ports

CHUNK = 64 * 1024
QUEUE = 64  # chunks in flight per direction: a slow reader pushes back instead of growing memory


class Faults:
    """The sidecar's current fault (at most one), read by every chunk."""

    KINDS = {"delay": ("ms", "jitter_ms", "scope"), "reset": ("share",), "loss": ("share",), "refuse": ()}

    def __init__(self) -> None:
        self.kind: str | None = None
        self.params: dict = {}
        self.rng = random.Random()

    def set(self, kind: str, params: dict) -> None:
        if kind not in self.KINDS or set(params) - set(self.KINDS[kind]):
            raise ValueError(f"unknown fault {kind!r} or parameters {sorted(params)}")
        if kind == "delay" and params.get("scope", "answers") not in ("answers", "all"):
            raise ValueError("delay scope must be 'answers' or 'all'")
        self.kind, self.params = kind, dict(params)

    def clear(self) -> None:
        self.kind, self.params = None, {}

    def delay(self, sent_by_service: bool, is_answer: bool) -> float:
        """Seconds to hold a chunk the service sends (answer or own request) or receives."""
        if self.kind != "delay" or not sent_by_service:
            return 0.0
        if not is_answer and self.params.get("scope", "answers") != "all":
            return 0.0
        jitter = float(self.params.get("jitter_ms", 0))
        ms = float(self.params.get("ms", 0)) + self.rng.uniform(-jitter, jitter)
        return max(ms, 0.0) / 1000.0

    def roll(self, kind: str) -> bool:
        return self.kind == kind and self.rng.random() < float(self.params.get("share", 1.0))


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer or a firewall would."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold, on_chunk=None) -> str | None:
    """Copy ``reader`` to ``writer``, holding each chunk ``hold()`` seconds while keeping order.

    Reading goes on while earlier chunks wait, as on a link with latency (not a
    slow link): each chunk is due at max(previous due, arrival + delay).
    ``on_chunk(data)`` may return "reset" or "drop" to end the copy that way.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(QUEUE)

    async def send() -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    due = 0.0
    try:
        while data := await reader.read(CHUNK):
            verdict = on_chunk(data) if on_chunk else None
            if verdict:
                sender.cancel()
                return verdict
            due = max(due, loop.time() + hold())
            await queue.put((due, data))
        await queue.put(None)
        await sender
    finally:
        sender.cancel()
    return None


class Sidecar:
    def __init__(self, mine: dict, plan: dict, faults: Faults):
        self.mine = mine
        self.plan = plan
        self.faults = faults
        self.ingress: asyncio.Server | None = None
        self.inbound: set[asyncio.StreamWriter] = set()
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        await self.listen_ingress()
        for callee, port in self.mine["egress"].items():
            upstream = self.plan[callee]["ingress"]
            await asyncio.start_server(lambda r, w, up=upstream: self.egress(r, w, up), "127.0.0.1", port)
        await asyncio.start_server(self.control, "127.0.0.1", self.mine["sidecar_control"])

    async def listen_ingress(self) -> None:
        self.ingress = await asyncio.start_server(self.accept, "127.0.0.1", self.mine["ingress"])

    async def accept(self, reader, writer) -> None:
        """A caller's connection to this service: answers may be delayed, requests reset or lost."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.mine["app"])
        except OSError:
            reset(writer)
            return
        self.inbound.add(writer)

        def request_fault(_data: bytes) -> str | None:
            if self.faults.roll("reset"):
                return "reset"
            if self.faults.roll("loss"):
                return "drop"
            return None

        to_service = asyncio.create_task(pump(reader, up_writer, lambda: self.faults.delay(False, False),
                                              request_fault))
        to_caller = asyncio.create_task(pump(up_reader, writer, lambda: self.faults.delay(True, True)))
        try:
            done, _ = await asyncio.wait({to_service, to_caller}, return_when=asyncio.FIRST_COMPLETED)
            verdict = to_service.result() if to_service in done and not to_service.exception() else None
            if verdict == "reset":
                reset(writer)
            elif verdict == "drop":
                to_caller.cancel()
                up_writer.close()
                while await reader.read(CHUNK):  # the caller hears nothing until it gives up
                    pass
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.inbound.discard(writer)
            for task in (to_service, to_caller):
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    async def egress(self, reader, writer, upstream: int) -> None:
        """This service's own call to a callee: its requests are delayed in the ``all`` scope."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            reset(writer)  # the callee is down: the service sees its connection fail
            return
        tasks = {asyncio.create_task(pump(reader, up_writer, lambda: self.faults.delay(True, False))),
                 asyncio.create_task(pump(up_reader, writer, lambda: 0.0))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    async def control(self, reader, writer) -> None:
        try:
            line = await reader.readline()
            reply = control.answer(self.handle_sync, line)
            await self.apply_refusal()  # before answering: once the lab hears "ok", the fault is on
            writer.write(reply)
            await writer.drain()
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    def handle_sync(self, message: dict) -> dict:
        op = message.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "clear":
            self.faults.clear()
        elif op == "set":
            self.faults.set(message["kind"], message.get("params", {}))
        else:
            raise ValueError(f"unknown op {op!r}")
        return {"ok": True, "fault": self.faults.kind}

    async def apply_refusal(self) -> None:
        """Stop or resume listening on the ingress to match the ``refuse`` fault."""
        async with self.lock:
            if self.faults.kind == "refuse" and self.ingress is not None:
                self.ingress.close()
                self.ingress = None
                for writer in list(self.inbound):
                    reset(writer)
            elif self.faults.kind != "refuse" and self.ingress is None:
                await self.listen_ingress()


async def run(mine: dict, plan: dict) -> None:
    sidecar = Sidecar(mine, plan, Faults())
    await sidecar.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="the lab's ports.json")
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    plan = ports.read(args.plan)
    try:
        asyncio.run(run(plan[args.name], plan))
    except OSError as exc:
        mine = plan[args.name]
        taken = [mine["ingress"], mine["sidecar_control"], *mine["egress"].values()]
        sys.exit(f"sidecar of {args.name}: cannot listen on one of ports {taken}: {exc}")


if __name__ == "__main__":
    main()
