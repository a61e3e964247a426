"""The export's fallback file: batches that do not fit the memory buffer, or arrive while the breaker
is open, appended as OTLP/JSON lines (one ``ExportTraceServiceRequest`` per line, the Collector file
exporter's format, which ``flask aiops replay`` also reads), and read back in order once the
endpoint answers again.

Each process writes its own folder (``<dir>/<pid>/``), so gunicorn workers never share a file. A
file is rotated when it reaches a tenth of ``max_bytes``; when the folder holds more than
``max_bytes`` the oldest file is deleted and its spans are counted as dropped. A process adopts the
folders of processes that no longer run (a recycled worker, a restart), so what they spilled is
still sent. Only the sender thread uses an instance: no locking here.

Delivery from the file is at least once: a line is forgotten after the endpoint accepted it; a
process that dies between the two sends it again (the product's own receiver stores a span id
once).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

from telemetry.metrics_dir import process_alive

log = logging.getLogger(__name__)
SUFFIX = ".jsonl"


def spans_in(line: str) -> int:
    return line.count('"spanId"')


class Fallback:
    def __init__(self, root: str | os.PathLike, max_bytes: int):
        self.root = Path(root)
        self.folder = self.root / str(os.getpid())
        self.max_bytes = max_bytes
        self.rotate_at = max(max_bytes // 10, 1)
        self._files: deque[list] = deque()  # [path, bytes, spans], oldest first
        self._seq = 0
        self._offset = 0  # read position in the oldest file
        self.bytes = 0
        self._opened = False

    def open(self) -> None:
        """Create the folder and adopt orphans (in the sender thread: ``create_app`` does no I/O)."""
        if self._opened and self.folder.name == str(os.getpid()):
            return
        self._opened = True
        self.folder = self.root / str(os.getpid())  # after a fork: this process's own folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._adopt()

    def _adopt(self) -> None:
        """Take over the files of processes that are gone (and this pid's own, after a restart: a
        container's pids repeat), renamed in order after any already here."""
        others = sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()),
                        key=lambda p: (p != self.folder, int(p.name)))
        for other in others:
            if other != self.folder and process_alive(int(other.name)):
                continue
            for path in sorted(other.glob("*" + SUFFIX)):
                target = self._next_path()
                try:
                    path.replace(target)
                except FileNotFoundError:  # another process adopted it first
                    continue
                text = target.read_text(encoding="utf-8", errors="replace")
                self._files.append([target, len(text.encode()), spans_in(text)])
                self.bytes += self._files[-1][1]
            if other != self.folder:
                try:
                    other.rmdir()
                except OSError:
                    pass

    def _next_path(self) -> Path:
        while True:
            self._seq += 1
            path = self.folder / f"{self._seq:08d}{SUFFIX}"
            if not path.exists():
                return path

    def __bool__(self) -> bool:
        return bool(self._files)

    def append(self, line: str, spans: int) -> int:
        """Write one line; returns spans dropped to stay under ``max_bytes`` (the oldest file's)."""
        data = (line + "\n").encode()
        if not self._files or self._files[-1][1] >= self.rotate_at:
            self._files.append([self._next_path(), 0, 0])
        entry = self._files[-1]
        with open(entry[0], "ab") as f:
            f.write(data)
        entry[1] += len(data)
        entry[2] += spans
        self.bytes += len(data)
        dropped = 0
        while self.bytes > self.max_bytes and len(self._files) > 1:
            dropped += self._drop_oldest()
        return dropped

    def _drop_oldest(self) -> int:
        path, size, spans = self._files.popleft()
        self.bytes -= size
        self._offset = 0
        path.unlink(missing_ok=True)
        log.warning("export fallback over %d bytes: dropped %s (%d spans)", self.max_bytes, path.name, spans)
        return spans

    def peek(self) -> str | None:
        """The oldest line not yet sent, or None."""
        while self._files:
            path = self._files[0][0]
            try:
                with open(path, "rb") as f:
                    f.seek(self._offset)
                    raw = f.readline()
            except FileNotFoundError:
                raw = b""
            if raw.endswith(b"\n"):
                return raw.decode("utf-8", errors="replace").rstrip("\n")
            if len(self._files) == 1 and raw:
                return None  # a line being written (cannot happen in one thread; be safe)
            self._finish_oldest()
        return None

    def done(self) -> None:
        """The line :meth:`peek` returned was sent (or given up): move past it."""
        path = self._files[0][0]
        with open(path, "rb") as f:
            f.seek(self._offset)
            raw = f.readline()
        self._offset += len(raw)
        self._files[0][2] = max(self._files[0][2] - spans_in(raw.decode("utf-8", "replace")), 0)
        if self._offset >= self._files[0][1]:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        path, size, _ = self._files.popleft()
        self.bytes -= size
        self._offset = 0
        path.unlink(missing_ok=True)

    @property
    def pending_bytes(self) -> int:
        return self.bytes - self._offset
