"""The log of a guarded run, and the tee that fills it from the command's pipes."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO

from buttress._clock import Clock
from buttress._redact import redact

__all__ = ["RunLog", "Sink", "Tee", "prune_logs", "redact_command", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """``text`` usable as a file name: runs of other characters become ``_`` (at most 80)."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "run"
    return cleaned[:80]


def redact_command(command: Sequence[str]) -> str:
    """The command line, quoted for a shell, with secrets masked."""
    return redact(shlex.join(command))


class RunLog:
    """A run's log file, one timestamped line per event: ``<UTC time> [attempt] stream | text``
    (stream ``run`` for the guard's own lines, ``out`` and ``err`` for the command's)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._clock = clock
        self._file: TextIO = open(  # noqa: SIM115 - closed by close()
            os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            "a",
            encoding="utf-8",
            errors="replace",
        )
        self._lock = threading.Lock()

    def line(self, attempt: int, stream: str, text: str) -> None:
        """Append one line (``text`` without its newline)."""
        stamp = datetime.fromtimestamp(self._clock.time(), UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._file.write(f"{stamp.replace('+00:00', 'Z')} [{attempt}] {stream} | {text}\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class Sink:
    """Where the command's bytes go: a binary stream, or a text stream they are decoded for."""

    def __init__(self, stream: IO[bytes] | TextIO) -> None:
        buffer = getattr(stream, "buffer", None)
        self._text = stream if buffer is None and isinstance(stream, io.TextIOBase) else None
        self._binary: IO[bytes] | None = buffer if buffer is not None else None
        if self._text is None and self._binary is None:
            self._binary = stream  # type: ignore[assignment]

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken terminal
            if self._binary is not None:
                self._binary.write(data)
                self._binary.flush()
            elif self._text is not None:
                self._text.write(data.decode(errors="replace"))
                self._text.flush()


class Tee:
    """One pipe of the command: bytes to the sink as they come, whole lines to the log."""

    def __init__(self, stream: str, sink: Sink, log: RunLog, attempt: int) -> None:
        self.stream, self.sink, self.log, self.attempt = stream, sink, log, attempt
        self.pending = b""

    def feed(self, data: bytes) -> None:
        self.sink.write(data)
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self.log.line(self.attempt, self.stream, line.decode(errors="replace"))

    def finish(self) -> None:
        if self.pending:
            self.log.line(self.attempt, self.stream, self.pending.decode(errors="replace"))
            self.pending = b""


def prune_logs(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` ``*.log`` files of ``directory`` (names sort by
    time); returns what was removed."""
    logs = sorted(directory.glob("*.log"))
    removed = logs[: max(0, len(logs) - keep)]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return removed
