"""``single_instance(name)``: a lock file that stops two copies of a job from running at once.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     with single_instance("nightly-report", directory=directory) as lock:
...         lock.held
True

The lock is an ``fcntl.flock`` on ``<directory>/<name>.lock`` (default directory
``.buttress/locks``, beside the state store). The kernel drops it when the holding process dies,
even by SIGKILL, so a crash never leaves the job locked out. While held, the file records who
holds it (pid, host, command line with secrets masked, start time), and ``AlreadyRunningError``
names that holder. The file is emptied on release but never deleted: deleting a lock file lets
a waiter lock the old inode while a newcomer locks a new one.

``flock`` rather than POSIX ``lockf``: a POSIX lock belongs to the process and is dropped when
*any* descriptor of the file is closed, and two acquisitions in one process never conflict. A
``flock`` belongs to the open file, so a second acquisition in the same process (another thread,
another object) is refused like any other copy. Descriptors are close-on-exec: a command started
while holding the lock does not inherit it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import re
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._redact import redact
from buttress.errors import AlreadyRunningError, ConfigError

__all__ = [
    "DEFAULT_DIRECTORY",
    "AlreadyRunningError",
    "InstanceLock",
    "LockHolder",
    "single_instance",
]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_DIRECTORY = Path(".buttress") / "locks"
"""Where lock files go by default, relative to the working directory (like the state store)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_COMMAND_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a lock: ``pid`` on ``host``, running ``command``, since ``started`` (epoch s)."""

    name: str
    pid: int
    host: str
    command: str
    started: float

    def to_dict(self) -> dict[str, Any]:
        """The holder as plain data (what the lock file contains)."""
        return {
            "name": self.name,
            "pid": self.pid,
            "host": self.host,
            "command": self.command,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockHolder:
        """The inverse of ``to_dict``; ``ValueError`` or ``KeyError`` on a malformed record."""
        return cls(
            str(data["name"]),
            int(data["pid"]),
            str(data["host"]),
            str(data["command"]),
            float(data["started"]),
        )

    def alive(self) -> bool | None:
        """Whether the holder's process exists: None when it runs on another host."""
        if self.host != socket.gethostname():
            return None
        return _pid_alive(self.pid)

    def __str__(self) -> str:
        since = datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds")
        return f"pid {self.pid} on {self.host} since {since}: {self.command}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 64 * 1024, 0)
        return LockHolder.from_dict(json.loads(data)) if data else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _default_command() -> str:
    argv = sys.orig_argv or sys.argv
    return redact(shlex.join(argv))[:_COMMAND_LIMIT]


class InstanceLock:
    """A named single-instance lock; build it with ``single_instance(name, ...)``.

    Use it as a context manager (``with``/``async with``), as a decorator (each call takes the
    lock, so concurrent calls in threads or tasks are refused too), or by hand with
    ``acquire()``, ``try_acquire()`` and ``release()``.
    """

    def __init__(
        self,
        name: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        wait: float | timedelta = 0.0,
        poll: float | timedelta = 0.05,
        command: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                "name",
                name,
                "must be 1-100 letters, digits, '.', '_' or '-', not starting with '.'",
            )
        self.name = name
        self.directory = DEFAULT_DIRECTORY if directory is None else Path(directory)
        self.path = self.directory / f"{name}.lock"
        self.wait = opt.duration("wait", wait, allow_zero=True)
        self.poll = opt.duration("poll", poll)
        self.command = _default_command() if command is None else redact(command)[:_COMMAND_LIMIT]
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._guard = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._info: LockHolder | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (in this process: a forked child does not)."""
        return self._fd is not None and self._pid == os.getpid()

    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or None when nobody does. A record left by a crashed holder
        on this host (its pid is gone) counts as nobody."""
        if self.held:
            return self._info
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            found = _read_holder(fd)
        finally:
            os.close(fd)
        if found is None or found.alive() is False:
            return None
        return found

    # -- taking and giving back ------------------------------------------------------------------

    def _try_once(self) -> bool:
        with self._guard:
            if self.held:
                raise AlreadyRunningError(self.name, self._info, str(self.path))
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            info = LockHolder(
                self.name, os.getpid(), socket.gethostname(), self.command, self._clock.time()
            )
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(info.to_dict()).encode(), 0)
            except BaseException:
                os.close(fd)  # also drops the lock
                raise
            self._fd, self._pid, self._info = fd, os.getpid(), info
            return True

    def _refused(self) -> AlreadyRunningError:
        holder: LockHolder | None = None
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                holder = _read_holder(fd)
            finally:
                os.close(fd)
        return AlreadyRunningError(self.name, holder, str(self.path))

    def try_acquire(self) -> bool:
        """Take the lock if it is free; returns whether this object now holds it."""
        try:
            return self._try_once()
        except AlreadyRunningError:
            return False

    def acquire(self, *, wait: float | timedelta | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds (default: the lock's ``wait``, 0);
        ``AlreadyRunningError`` naming the holder when it stays taken."""
        seconds = self.wait if wait is None else opt.duration("wait", wait, allow_zero=True)
        deadline = self._clock.monotonic() + seconds
        while not self._try_once():
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise self._refused()
            self._clock.sleep(min(self.poll, remaining))

    async def aacquire(self, *, wait: float | timedelta | None = None) -> None:
        """``acquire`` for async code: the waits between tries do not block the event loop."""
        seconds = self.wait if wait is None else opt.duration("wait", wait, allow_zero=True)
        deadline = self._clock.monotonic() + seconds
        while not self._try_once():
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise self._refused()
            await self._clock.asleep(min(self.poll, remaining))

    def release(self) -> None:
        """Give the lock back (the record is emptied first); does nothing if not held. In a
        forked child, only closes the inherited descriptor: the parent keeps the lock."""
        with self._guard:
            fd, self._fd, self._info = self._fd, None, None
            if fd is None:
                return
            try:
                if self._pid == os.getpid():
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, 0)
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    # -- context manager and decorator -----------------------------------------------------------

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> InstanceLock:
        await self.aacquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _twin(self) -> InstanceLock:
        return InstanceLock(
            self.name,
            directory=self.directory,
            wait=self.wait,
            poll=self.poll,
            command=self.command,
            clock=self._clock,
        )

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or async) so that each call runs holding the lock."""
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Any], fn)

            @functools.wraps(fn)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with self._twin():
                    return await afn(*args, **kwargs)

            return cast(Callable[P, R], guarded_async)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._twin():
                return fn(*args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        state = "held" if self.held else "free here"
        return f"InstanceLock({self.name!r}, path={str(self.path)!r}, {state})"


def single_instance(
    name: str,
    *,
    directory: str | os.PathLike[str] | None = None,
    wait: float | timedelta = 0.0,
    poll: float | timedelta = 0.05,
    command: str | None = None,
    clock: Clock | None = None,
) -> InstanceLock:
    """A lock that lets one copy of job ``name`` run at a time, across processes on this host.

    ``directory`` holds the lock files (default ``.buttress/locks``); ``wait`` is how long
    ``acquire``/``with`` wait for the lock (default 0: refuse at once), trying every ``poll``
    seconds (0.05); ``command`` is recorded as the holder's command (default this process's
    command line, secrets masked). A refusal raises ``AlreadyRunningError`` naming the holder.
    """
    return InstanceLock(
        name, directory=directory, wait=wait, poll=poll, command=command, clock=clock
    )
