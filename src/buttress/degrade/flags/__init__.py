"""Feature flags: boolean and variant flags, Unleash-compatible percentage rollout, targeting
rules, dependencies on health checks and the degradation level, a kill switch; kept in a
``buttress.stores`` store (SQLite by default, Redis for fleets), audited, evaluated from a local
cache in well under a microsecond. See ``docs/flags.md``.

>>> flags = FlagStore("memory://", sync_interval=None)
>>> change = flags.create(Flag("new-checkout", enabled=True, rollout=25))
>>> flags.enabled("new-checkout", user="123"), flags.enabled("new-checkout", user="42")
(True, False)
>>> flags.close()

``ButtressProvider`` (the OpenFeature provider) needs ``openfeature-sdk`` (the ``flags`` extra)
and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.degrade.flags._eval import Evaluation
from buttress.degrade.flags._events import FlagChanged, FlagSuspended
from buttress.degrade.flags._hash import normalized_value
from buttress.degrade.flags._model import Flag, FlagRule, Variant
from buttress.degrade.flags._persist import FlagChange
from buttress.degrade.flags._store import FlagStore

if TYPE_CHECKING:
    from buttress.degrade.flags._openfeature import ButtressProvider

__all__ = [
    "ButtressProvider",
    "Evaluation",
    "Flag",
    "FlagChange",
    "FlagChanged",
    "FlagRule",
    "FlagStore",
    "FlagSuspended",
    "Variant",
    "normalized_value",
]


def __getattr__(name: str) -> Any:
    if name == "ButtressProvider":
        from buttress.degrade.flags._openfeature import ButtressProvider

        return ButtressProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
