"""Resource management: managed temporary files and directories, pools of HTTP clients and a
memory watch. See ``docs/resources.md``.

- ``temp_directory()``, ``temp_file()``: removed when their ``with`` block ends (also by an
  error), on ``remove()`` or at exit; ``cleanup_temp()`` removes what crashed processes left.
- ``ClientPool``: named httpx clients (httpx is imported on first use), closed with the pool,
  their connections rebuilt after repeated connection errors.
- ``MemoryWatch``: RSS and garbage-collector statistics, a forced collection above a threshold
  and a ``MemoryRising`` event when memory keeps rising.

The lock that keeps a job to one copy is ``buttress.lock.single_instance``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.resources._events import ClientRecreated, MemoryCollected, MemoryRising
from buttress.resources._memory import MemorySample, MemoryWatch, read_rss
from buttress.resources._temp import (
    DEFAULT_MAX_AGE,
    TempPath,
    cleanup_temp,
    default_root,
    temp_directory,
    temp_file,
)

if TYPE_CHECKING:
    from buttress.resources._clients import ClientPool, ClientStats

__all__ = [
    "DEFAULT_MAX_AGE",
    "ClientPool",
    "ClientRecreated",
    "ClientStats",
    "MemoryCollected",
    "MemoryRising",
    "MemorySample",
    "MemoryWatch",
    "TempPath",
    "cleanup_temp",
    "default_root",
    "read_rss",
    "temp_directory",
    "temp_file",
]

_LAZY = frozenset({"ClientPool", "ClientStats"})


def __getattr__(name: str) -> Any:
    """Import the httpx-based names on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'buttress.resources' has no attribute {name!r}")
    from buttress.resources import _clients

    value = getattr(_clients, name)
    globals()[name] = value
    return value
