"""``FlagView``: the local, compiled copy of a namespace's flags that every read uses.

``FlagStore`` (``_store``) fills it from the store; reads never do I/O. ``_adopt`` takes a new
set of flags and recompiles (``_eval``); ``_watch`` events each flag that switched itself off
(degradation level, failing health check) or came back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from buttress._clock import Clock
from buttress.degrade._levels import LevelSource
from buttress.degrade.flags._eval import (
    NOT_FOUND,
    Check,
    Evaluation,
    Picker,
    compile_check,
    compile_picker,
    decide,
)
from buttress.degrade.flags._events import FlagSuspended, announce
from buttress.degrade.flags._model import Flag
from buttress.health import HealthRegistry, Status

__all__ = ["FlagView"]

logger = logging.getLogger("buttress.flags")

_MAX_WARNED = 1000


class FlagView:
    """Flags evaluated from a local cache; the reads of ``FlagStore``."""

    namespace: str

    def __init__(
        self,
        bootstrap: Iterable[Flag],
        levels: LevelSource | None,
        health: HealthRegistry | None,
        cache_size: int,
        clock: Clock,
    ) -> None:
        self._levels = levels
        self._health = health
        self._cache_size = cache_size
        self._clock = clock
        self._flags: dict[str, Flag] = {flag.name: flag for flag in bootstrap}
        self._checks: dict[str, Check] = {}
        self._pickers: dict[str, Picker] = {}
        self._version = -1
        self._failing: frozenset[str] = frozenset()
        self._suspended: dict[str, str] = {}
        self._warned: set[str] = set()
        self._compile()

    # -- reads: the hot path --------------------------------------------------------------------

    def enabled(self, name: str, /, *, default: bool = False, **attributes: object) -> bool:
        """Whether flag ``name`` is on for the subject described by ``attributes`` (``user=``,
        ``tenant=``, any key); ``default`` when no flag has that name. No I/O."""
        check = self._checks.get(name)
        if check is None:
            self._missing(name)
            return default
        return check(attributes)

    def variant(
        self, name: str, /, *, default: str | None = None, **attributes: object
    ) -> str | None:
        """The variant of flag ``name`` served to the subject, None when the flag is off for it
        (or is a boolean flag); ``default`` when no flag has that name. No I/O."""
        picker = self._pickers.get(name)
        if picker is None:
            self._missing(name)
            return default
        return picker(attributes)

    def evaluate(
        self, name: str, context: Mapping[str, object] | None = None, /, **attributes: object
    ) -> Evaluation:
        """The full evaluation with its reason (slower than ``enabled``); attributes from
        ``context`` and keywords. An unknown flag gives ``reason == "NOT_FOUND"``."""
        flag = self._flags.get(name)
        if flag is None:
            return Evaluation(name, False, None, None, NOT_FOUND)
        merged = {**context, **attributes} if context else attributes
        level = None if self._levels is None else self._levels.level
        return decide(flag, merged, level, self._failing)

    def _missing(self, name: str) -> None:
        if name not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(name)
            logger.warning("unknown feature flag %r in namespace %r", name, self.namespace)

    # -- reads: definitions ---------------------------------------------------------------------

    def get(self, name: str) -> Flag:
        """The flag called ``name``; KeyError if there is none."""
        try:
            return self._flags[name]
        except KeyError:
            raise KeyError(f"no flag named {name!r}") from None

    def flags(self) -> list[Flag]:
        """Every flag, sorted by name."""
        current = self._flags
        return [current[name] for name in sorted(current)]

    def __contains__(self, name: object) -> bool:
        return name in self._flags

    def __len__(self) -> int:
        return len(self._flags)

    def status(self, name: str) -> str:
        """``killed``, ``off``, ``suspended`` (off on its own), ``partial`` (rules or a
        rollout below 100) or ``on``."""
        flag = self.get(name)
        if flag.killed:
            return "killed"
        if not flag.enabled:
            return "off"
        if name in self._suspended:
            return "suspended"
        return "partial" if flag.rules or flag.rollout < 100 else "on"

    def view(self, name: str) -> dict[str, Any]:
        """Flag ``name`` as plain data with its ``status`` and, when it is suspended, the
        ``cause`` (else None); KeyError if there is no such flag."""
        data = self.get(name).to_dict()
        data["status"] = self.status(name)
        data["cause"] = self._suspended.get(name)
        return data

    def views(self) -> list[dict[str, Any]]:
        """``view`` of every flag, sorted by name."""
        return [self.view(flag.name) for flag in self.flags()]

    @property
    def version(self) -> int:
        """The version of the flags in use (-1 before the store was first read)."""
        return self._version

    # -- keeping the cache ---------------------------------------------------------------------

    def _adopt(self, version: int, flags: dict[str, Flag]) -> bool:
        if version == self._version and flags == self._flags:
            return False
        self._version, self._flags = version, flags
        self._compile()
        self._watch()
        return True

    def _compile(self) -> None:
        levels, failing, size = self._levels, self._failing, self._cache_size
        checks: dict[str, Check] = {}
        pickers: dict[str, Picker] = {}
        for name, flag in self._flags.items():
            check = checks[name] = compile_check(flag, levels, failing, size)
            pickers[name] = compile_picker(flag, check, levels, failing, size)
        self._checks, self._pickers = checks, pickers

    def _failing_checks(self) -> frozenset[str]:
        if self._health is None:
            return frozenset()
        return frozenset(
            check.name
            for check, result in self._health.last_results()
            if result is not None and result.status is Status.FAIL
        )

    def _watch(self) -> None:
        """Event each flag that switched itself off, or came back, since the last look."""
        level = None if self._levels is None else self._levels.level
        now: dict[str, str] = {}
        for name, flag in self._flags.items():
            if flag.killed or not flag.enabled:
                continue
            failing = sorted(self._failing.intersection(flag.requires))
            if failing:
                now[name] = f"required health check failing: {', '.join(failing)}"
            elif flag.off_at is not None and level is not None and level >= flag.off_at:
                now[name] = f"degradation level {level.label} >= {flag.off_at.label}"
        when = self._clock.time()
        for name in now.keys() - self._suspended.keys():
            announce(FlagSuspended(name, when, True, now[name]))
        for name in self._suspended.keys() - now.keys():
            current = self._flags.get(name)
            if current is not None and current.enabled and not current.killed:
                announce(
                    FlagSuspended(name, when, False, f"recovered from {self._suspended[name]}")
                )
        self._suspended = now
