"""Which loopback port is whose: written once by the lab, read by every service and sidecar.

Per service: ``app`` (the service itself), ``ingress`` (its sidecar, where
callers connect), ``egress`` (its sidecar's listener per callee, where the
service sends its own calls), ``control`` and ``sidecar_control`` (the
untraced control channel).
"""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from pathlib import Path

from bench.faultlab.topology import Topology


def allocate(topology: Topology) -> dict:
    """Free ports for every listener. All sockets are held open until every port is picked,
    so no two listeners get the same port; another program may still take one before the
    child binds it, which the child reports as a clear error."""
    with ExitStack() as stack:
        def free() -> int:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

        return {
            name: {
                "app": free(), "ingress": free(), "control": free(), "sidecar_control": free(),
                "egress": {callee: free() for callee in service.callees()},
            }
            for name, service in topology.services.items()
        }


def save(plan: dict, path: Path) -> None:
    path.write_text(json.dumps(plan, indent=1))


def read(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
