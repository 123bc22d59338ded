"""Read-only mode: writes are refused with ``ReadOnlyError`` while the database is degraded;
reads go on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, ParamSpec, TypeVar

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._policy import Policy
from buttress.degrade._levels import DegradationLevel, LevelSource
from buttress.errors import ConfigError, RejectedError
from buttress.events import FallbackUsed, emit, wants
from buttress.fallback import FallbackSnapshot

__all__ = ["ReadOnlyError", "ReadOnlyGuard", "ReadOnlyOptions"]

P = ParamSpec("P")
T = TypeVar("T")


class ReadOnlyError(RejectedError):
    """A write was refused: the service is in read-only mode (``source`` names the guard)."""

    def _describe(self) -> str:
        return "read-only mode: writes are refused while the database is degraded"


@dataclass(frozen=True, slots=True)
class ReadOnlyOptions:
    """A read-only guard's options; see ``ReadOnlyGuard``."""

    when: LevelSource | Callable[[], bool]
    at: DegradationLevel = DegradationLevel.SEVERE


class ReadOnlyGuard(Policy):
    """Refuses writes while read-only; wrap (or decorate) the writes only.

    ``ReadOnlyGuard(when, *, at=DegradationLevel.SEVERE, name="read-only", clock=None)``:
    ``when`` is a ``LevelSource`` (a ``DegradationManager``: read-only from level ``at`` up) or
    a predicate ``when() -> bool`` (a health check, a flag). ``check()`` raises
    ``ReadOnlyError`` while read-only; ``call``/``acall`` and the decorator run the write after
    ``check()``. Each refusal is counted in ``used`` and emits ``FallbackUsed``.
    """

    __slots__ = ("_clock", "_predicate", "name", "options", "used")

    registry_kind: ClassVar[str] = "fallback"
    options: ReadOnlyOptions

    def __init__(
        self,
        when: LevelSource | Callable[[], bool],
        *,
        at: DegradationLevel | str = DegradationLevel.SEVERE,
        name: str = "read-only",
        clock: Clock | None = None,
    ) -> None:
        level = DegradationLevel.from_name(at)
        if level is DegradationLevel.NORMAL:
            raise ConfigError("at", at, "must be above normal")
        if isinstance(when, LevelSource):
            source = when
            self._predicate: Callable[[], bool] = lambda: source.level >= level
        elif callable(when):
            self._predicate = when
        else:
            raise ConfigError("when", when, "must be a LevelSource or a predicate: when() -> bool")
        self.name = name
        self.options = ReadOnlyOptions(when, level)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.used = 0

    @property
    def read_only(self) -> bool:
        """Whether writes are refused now."""
        return bool(self._predicate())

    def snapshot(self) -> FallbackSnapshot:
        """How many writes were refused."""
        return FallbackSnapshot(self.name, self.used)

    def check(self) -> None:
        """Raise ``ReadOnlyError`` while read-only; return otherwise."""
        if self._predicate():
            self.used += 1
            error = ReadOnlyError(self.name)
            if wants(FallbackUsed):
                emit(FallbackUsed(self.name, self._clock.time(), error))
            raise error

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the write ``fn(*args, **kwargs)`` unless read-only (then ``ReadOnlyError``)."""
        self.check()
        return fn(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await the write ``fn(*args, **kwargs)`` unless read-only (then ``ReadOnlyError``)."""
        self.check()
        return await fn(*args, **kwargs)

    def describe(self) -> dict[str, Any]:
        """The guard's type, name and options as plain data."""
        when = self.options.when
        source = getattr(when, "name", None) or getattr(when, "__qualname__", repr(when))
        return {
            "policy": "ReadOnlyGuard",
            "name": self.name,
            "options": {"when": source, "at": self.options.at.label},
        }
