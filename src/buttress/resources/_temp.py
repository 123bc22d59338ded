"""Managed temporary files and directories, and the cleanup of those left by crashed processes.

Every managed path lives in one root directory (default ``<system temp>/buttress-<uid>``, made
``0700``) under a name that says who made it and when: ``bt-<pid>-<created ms>-<label>-<random>``.
A path is removed when its ``with`` block ends (normally or by an error), by ``remove()``, or at
interpreter exit (``atexit``) if still there. What a killed process could not remove,
``cleanup_temp()`` removes later: paths whose owner process is gone, and paths older than
``max_age`` whoever owns them, except the ones this process still manages.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_AGE",
    "TempPath",
    "cleanup_temp",
    "default_root",
    "temp_directory",
    "temp_file",
]

logger = logging.getLogger("buttress")

DEFAULT_MAX_AGE = 86400.0
"""Seconds after which ``cleanup_temp`` removes a managed path even if its owner still runs."""

_NAME = re.compile(r"bt-(?P<pid>\d+)-(?P<created>\d+)-")
_LABEL = re.compile(r"[^A-Za-z0-9._]+")

# Paths this process manages (removed at exit), keyed by path.
_live: dict[Path, TempPath] = {}
_live_lock = threading.Lock()
_atexit_registered = False


def default_root() -> Path:
    """``<system temp>/buttress-<uid>``: the managed paths of this user on this host."""
    return Path(tempfile.gettempdir()) / f"buttress-{os.getuid()}"


def _prepare_root(root: Path | None) -> Path:
    """The root, created ``0700`` if missing; it must be a real directory owned by this user
    (a symlink or someone else's directory in a shared /tmp is refused)."""
    directory = default_root() if root is None else Path(root)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError("root", str(directory), "must be a directory owned by this user")
    return directory


class TempPath(os.PathLike[str]):
    """A managed temporary file or directory; ``path`` is where it is.

    Use it as a context manager (``with temp_directory() as path:``) to remove it when the
    block ends, or call ``remove()``; whatever is left is removed at interpreter exit.
    """

    def __init__(self, path: Path, kind: Literal["file", "directory"]) -> None:
        self.path = path
        self.kind = kind
        self.owner = os.getpid()
        self._lock = threading.Lock()
        self._removed = False

    @property
    def removed(self) -> bool:
        """Whether ``remove()`` ran (the path may also be gone for other reasons)."""
        return self._removed

    def remove(self) -> None:
        """Remove the path (a directory with its contents); does nothing the second time, and
        nothing in a forked child, whose parent still owns it."""
        with self._lock:
            if self._removed or self.owner != os.getpid():
                return
            self._removed = True
        with _live_lock:
            _live.pop(self.path, None)
        _delete(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"TempPath({str(self.path)!r}, {self.kind})"


def _delete(path: Path) -> bool:
    """Remove ``path`` whatever it is; False when it was already gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def _prefix(label: str, clock: Clock) -> str:
    created = int(clock.time() * 1000)
    clean = _LABEL.sub("_", label)[:40]
    return f"bt-{os.getpid()}-{created}-" + (f"{clean}-" if clean else "")


def _manage(path: Path, kind: Literal["file", "directory"]) -> TempPath:
    global _atexit_registered
    managed = TempPath(path, kind)
    with _live_lock:
        _live[path] = managed
        if not _atexit_registered:
            atexit.register(_remove_all)
            _atexit_registered = True
    return managed


def temp_directory(
    label: str = "", *, root: str | os.PathLike[str] | None = None, clock: Clock | None = None
) -> TempPath:
    """A new empty directory (``0700``) under ``root`` (default ``default_root()``), removed
    with its contents when the ``with`` block ends, on ``remove()`` or at exit."""
    directory = _prepare_root(None if root is None else Path(root))
    made = tempfile.mkdtemp(prefix=_prefix(label, clock or SYSTEM_CLOCK), dir=directory)
    return _manage(Path(made), "directory")


def temp_file(
    label: str = "",
    *,
    suffix: str = "",
    root: str | os.PathLike[str] | None = None,
    clock: Clock | None = None,
) -> TempPath:
    """A new empty file (``0600``) under ``root``, ending in ``suffix``, removed when the
    ``with`` block ends, on ``remove()`` or at exit."""
    if "/" in suffix or "\0" in suffix:
        raise ConfigError("suffix", suffix, "must not contain '/' or NUL")
    directory = _prepare_root(None if root is None else Path(root))
    fd, made = tempfile.mkstemp(
        prefix=_prefix(label, clock or SYSTEM_CLOCK), suffix=suffix, dir=directory
    )
    os.close(fd)
    return _manage(Path(made), "file")


def _remove_all() -> None:
    """At exit: remove what this process still manages (a forked child leaves its parent's)."""
    with _live_lock:
        mine = [managed for managed in _live.values() if managed.owner == os.getpid()]
    for managed in mine:
        try:
            managed.remove()
        except OSError as exc:
            logger.warning("cannot remove temporary %s %s: %s", managed.kind, managed.path, exc)


def owner_of(name: str) -> tuple[int, float] | None:
    """``(pid, created)`` from a managed path's name (created in epoch seconds), or None when
    the name is not one of ours."""
    match = _NAME.match(name)
    if match is None:
        return None
    return int(match["pid"]), int(match["created"]) / 1000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_temp(
    *,
    root: str | os.PathLike[str] | None = None,
    max_age: float | timedelta | None = DEFAULT_MAX_AGE,
    clock: Clock | None = None,
) -> list[Path]:
    """Remove leftovers under ``root``: managed paths whose owner process is gone, and those
    older than ``max_age`` seconds (default a day; None: never by age), except the paths this
    process still manages. Returns what was removed. With every argument defaulted it is a
    job for ``Scheduler.add("temp-cleanup", cleanup_temp, interval=3600)``."""
    age_limit = opt.optional_duration("max_age", max_age)
    now = (clock or SYSTEM_CLOCK).time()
    directory = default_root() if root is None else Path(root)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    with _live_lock:
        managed = set(_live)
    removed: list[Path] = []
    for entry in entries:
        owner = owner_of(entry.name)
        path = Path(entry.path)
        if owner is None or path in managed:
            continue
        pid, created = owner
        old = age_limit is not None and now - created > age_limit
        if not old and _alive(pid):
            continue
        try:
            if _delete(path):
                removed.append(path)
        except OSError as exc:
            logger.warning("temporary cleanup cannot remove %s: %s", path, exc)
    if removed:
        logger.info(
            "temporary cleanup removed %d leftover path(s) under %s", len(removed), directory
        )
    return removed
