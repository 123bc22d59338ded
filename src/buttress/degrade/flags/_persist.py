"""Flags in a ``buttress.stores`` store: one JSON document, a change counter, an audit trail.

Logical keys, for namespace ``ns``:

- ``flags:ns``: the document ``{"format": "buttress.flags/1", "version": n, "flags": {...}}``,
  replaced with ``compare_and_set`` (read, change, swap; again on a conflict), so concurrent
  writers never lose each other's changes;
- ``flags:ns:changes``: a counter bumped after every swap. Readers poll it (cheap) and read the
  document only when it moved; on Redis the writer also publishes on the channel
  ``layout.key("flags:ns", "changes")`` so that subscribers read at once;
- ``flags:ns:audit`` (a counter) and ``flags:ns:audit:<id>``: one JSON entry per change, kept
  for ``audit_ttl`` (None: forever).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from buttress._options import Duration
from buttress.degrade.flags._model import Flag
from buttress.errors import ConfigError, StoreError
from buttress.health._report import rfc3339
from buttress.stores import RedisStore, Store

__all__ = ["FORMAT", "FlagChange", "Repository", "export_document", "parse_import"]

FORMAT = "buttress.flags/1"
_ATTEMPTS = 50
_SCAN_LIMIT = 2000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One audited change: ``id``, ``time`` (wall clock), ``actor`` (who), ``action`` (what:
    create, update, enable, disable, rollout, kill, revive, delete, import), the ``flag``, its
    state ``before`` and ``after`` (None when absent) and the ``reason``."""

    id: int
    time: float
    actor: str
    action: str
    flag: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The change as plain data, ``time`` in RFC 3339."""
        return {
            "id": self.id,
            "time": rfc3339(self.time),
            "actor": self.actor,
            "action": self.action,
            "flag": self.flag,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


def encode(version: int, flags: Mapping[str, Flag]) -> bytes:
    """The stored document."""
    body = {
        "format": FORMAT,
        "version": version,
        "flags": {name: flags[name].to_dict() for name in sorted(flags)},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | None) -> tuple[int, dict[str, Flag]]:
    """The version and flags of a stored document (absent: version 0, no flags)."""
    if raw is None:
        return 0, {}
    try:
        data = json.loads(raw)
        version = int(data["version"])
        flags = {
            name: Flag.from_dict(item, path=f"flags.{name}", name=name)
            for name, item in data["flags"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"the stored flags document is unreadable: {exc}") from exc
    return version, flags


def export_document(namespace: str, version: int, flags: Iterable[Flag]) -> dict[str, Any]:
    """The export format: ``{"format", "namespace", "version", "flags": [flag, ...]}``."""
    return {
        "format": FORMAT,
        "namespace": namespace,
        "version": version,
        "flags": [flag.to_dict() for flag in sorted(flags, key=lambda f: f.name)],
    }


def parse_import(data: object) -> list[Flag]:
    """The flags of an export document (or of a bare list of flags), validated; ConfigError
    naming ``flags[i].field`` for the first bad one, or a duplicate name."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ConfigError("document", "<json>", f"must be JSON ({exc})") from None
    if isinstance(data, Mapping):
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise ConfigError("format", fmt, f"must be {FORMAT!r}")
        data = data.get("flags")
    if not isinstance(data, list):
        raise ConfigError("flags", data, "must be a list of flags")
    flags = [Flag.from_dict(item, path=f"flags[{i}]") for i, item in enumerate(data)]
    names = [flag.name for flag in flags]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError("flags", name, "must have unique names")
    return flags


class Repository:
    """Reads and writes one namespace's flags in ``store`` (see the module docstring)."""

    def __init__(self, store: Store, namespace: str, audit_ttl: Duration | None) -> None:
        self.store = store
        self.doc = f"flags:{namespace}"
        self.counter = f"flags:{namespace}:changes"
        self.audit_seq = f"flags:{namespace}:audit"
        self.audit_ttl = audit_ttl
        self.channel = (
            store.layout.key(self.doc, "changes") if isinstance(store, RedisStore) else None
        )

    def changes(self) -> int:
        """The change counter (what readers poll)."""
        return self.store.get_counter(self.counter)

    def load(self) -> tuple[int, dict[str, Flag]]:
        """The current version and flags."""
        return decode(self.store.get(self.doc))

    def change(self, mutate: Callable[[dict[str, Flag]], T]) -> tuple[T, int, dict[str, Flag]]:
        """Apply ``mutate`` (which edits the dict it gets, or raises) atomically: the result,
        the new version and flags. The counter is bumped and the change published after. A
        falsy result (nothing to change) writes nothing."""
        for _ in range(_ATTEMPTS):
            raw = self.store.get(self.doc)
            version, flags = decode(raw)
            result = mutate(flags)
            if not result:
                return result, version, flags
            new = encode(version + 1, flags)
            if self.store.compare_and_set(self.doc, raw, new):
                self.store.incr(self.counter)
                self.publish(version + 1)
                return result, version + 1, flags
        raise StoreError(f"flags: {_ATTEMPTS} concurrent writers in a row; try again")

    def publish(self, version: int) -> None:
        """Tell subscribers (Redis only) that the flags changed."""
        if self.channel is not None and isinstance(self.store, RedisStore):
            with self.store.guard("publish"):
                self.store.client.publish(self.channel, str(version))

    def record(self, change: FlagChange) -> FlagChange:
        """Append ``change`` to the audit trail; it comes back with its id."""
        entry_id = self.store.incr(self.audit_seq)
        data = change.to_dict()
        data.update(id=entry_id, time=change.time)
        self.store.set(f"{self.audit_seq}:{entry_id}", json.dumps(data), ttl=self.audit_ttl)
        return FlagChange(
            entry_id,
            change.time,
            change.actor,
            change.action,
            change.flag,
            change.before,
            change.after,
            change.reason,
        )

    def history(
        self, limit: int, before: int | None = None, flag: str | None = None
    ) -> list[FlagChange]:
        """The newest ``limit`` changes (of ``flag`` if given) with an id below ``before``."""
        top = self.store.get_counter(self.audit_seq)
        start = top if before is None else min(top, before - 1)
        found: list[FlagChange] = []
        entry_id = start
        while entry_id > 0 and len(found) < limit and start - entry_id < _SCAN_LIMIT:
            raw = self.store.get(f"{self.audit_seq}:{entry_id}")
            entry_id -= 1
            if raw is None:
                continue
            data = json.loads(raw)
            if flag is not None and data["flag"] != flag:
                continue
            found.append(
                FlagChange(
                    int(data["id"]),
                    float(data["time"]),
                    data["actor"],
                    data["action"],
                    data["flag"],
                    data["before"],
                    data["after"],
                    data.get("reason"),
                )
            )
        return found
