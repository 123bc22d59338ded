"""Lua scripts shipped as package data in ``_lua/*.lua`` and loaded with importlib.resources.

Every script is the shared prelude (``_lua/_lib.lua``: ``now_ms()`` from the server's ``TIME``
and ``px(arg)`` for optional ttls) followed by the script's own source. Scripts of later
packages (fleet, rate limits, DLQ) live in their package's ``_lua/`` folder and load with
``load_script(name, package=...)``; they get the same prelude.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from importlib import resources

__all__ = ["Script", "load_script"]

_PRELUDE_PACKAGE = "buttress.stores"


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script: its ``name``, full ``source`` (prelude included) and ``sha`` (SHA-1 hex)."""

    name: str
    source: str
    sha: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    @classmethod
    def from_source(cls, name: str, body: str) -> Script:
        """A script from ``body`` with the prelude before it (for scripts built in code)."""
        return cls(name, _read(_PRELUDE_PACKAGE, "_lib") + body)


@functools.cache
def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath("_lua", f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def load_script(name: str, *, package: str = _PRELUDE_PACKAGE) -> Script:
    """The script ``<package>/_lua/<name>.lua`` with the prelude (default package: stores)."""
    return Script.from_source(name, _read(package, name))
