"""Profiles: defaults that sit under the file's own values, by kind of deployment.

``production`` is conservative, ``development`` waits less, ``testing`` barely retries and times
out fast. A profile fills in, for every configured entry of a section, the options the entry
does not set (``entries``), and the settings of a table the file does not set (``settings``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from buttress.config._errors import format_path

__all__ = ["DEFAULT_PROFILE", "PROFILES", "Profile", "apply_profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    """A named set of defaults: ``entries`` per section (``"breakers"``, ``"health.checks"``)
    apply to each entry in it; ``settings`` per table (``"health"``) apply to the table."""

    name: str
    entries: Mapping[str, Mapping[str, Any]]
    settings: Mapping[str, Mapping[str, Any]]


def _profile(
    name: str,
    *,
    breakers: dict[str, Any],
    retries: dict[str, Any],
    checks: dict[str, Any],
    health: dict[str, Any],
) -> Profile:
    entries = {"breakers": breakers, "retries": retries, "health.checks": checks}
    return Profile(
        name,
        MappingProxyType({k: MappingProxyType(v) for k, v in entries.items()}),
        MappingProxyType({"health": MappingProxyType(health)}),
    )


PROFILES: Final[Mapping[str, Profile]] = MappingProxyType(
    {
        "production": _profile(
            "production",
            breakers={"minimum_calls": 20, "open_for": 60.0},
            retries={
                "attempts": 3,
                "backoff": {
                    "kind": "exponential",
                    "base": 0.1,
                    "factor": 2.0,
                    "cap": 10.0,
                    "jitter": "full",
                },
            },
            checks={"timeout": 5.0, "ttl": 30.0},
            health={"interval": 60.0, "cooldown": 300.0, "history": 100},
        ),
        "development": _profile(
            "development",
            breakers={"minimum_calls": 5, "open_for": 10.0},
            retries={
                "attempts": 3,
                "backoff": {
                    "kind": "exponential",
                    "base": 0.05,
                    "factor": 2.0,
                    "cap": 2.0,
                    "jitter": "full",
                },
            },
            checks={"timeout": 2.0, "ttl": 5.0},
            health={"interval": 15.0, "cooldown": 60.0, "history": 100},
        ),
        "testing": _profile(
            "testing",
            breakers={"minimum_calls": 2, "open_for": 1.0},
            retries={"attempts": 1, "backoff": {"kind": "constant", "delay": 0.0}},
            checks={"timeout": 1.0, "ttl": 0.0},
            health={"interval": 1.0, "cooldown": 0.0, "history": 20},
        ),
    }
)
"""The built-in profiles: production, development, testing."""

DEFAULT_PROFILE: Final = "production"
"""The profile used when neither ``profile=``, ``$BUTTRESS_PROFILE`` nor the file names one."""


def apply_profile(data: dict[str, Any], profile: Profile) -> dict[str, str]:
    """Fill ``data`` with ``profile``'s defaults where it sets nothing; returns the paths filled,
    mapped to where they came from (for error messages)."""
    filled: dict[str, str] = {}
    origin = f"the {profile.name} profile"
    for section, defaults in profile.entries.items():
        table = _table(data, section.split("."), create=False)
        for name, entry in (table or {}).items():
            if isinstance(entry, dict):
                for key, value in defaults.items():
                    if key not in entry:
                        entry[key] = copy.deepcopy(value)
                        filled[format_path((*section.split("."), name, key))] = origin
    for section, defaults in profile.settings.items():
        table = _table(data, section.split("."), create=True)
        if table is not None:
            for key, value in defaults.items():
                if key not in table:
                    table[key] = copy.deepcopy(value)
                    filled[format_path((*section.split("."), key))] = origin
    return filled


def _table(data: dict[str, Any], parts: list[str], *, create: bool) -> dict[str, Any] | None:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict):
            return None
        if part not in node and create:
            node[part] = {}
        node = node.get(part)
    return node if isinstance(node, dict) else None
