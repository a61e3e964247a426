"""The name this process writes as a lease owner: ``host:pid``.

The detection cycle, the outbox and the worker each take database leases and
record who holds them; they share this one name so that a lease can be traced
to a process, without any of them importing another just for it.
"""

from __future__ import annotations

import os
import socket


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
