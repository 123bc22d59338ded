"""``FlagStore``: flags kept in a store, evaluated from a compiled local cache.

Reads (``enabled``, ``variant``, ``evaluate``) never do I/O: they use the closures compiled
from the last flags read (``_eval``). The process's fleet sync thread (``buttress-fleet-sync``)
calls ``refresh`` every ``sync_interval`` (0.5 s): it polls the change counter, reads the
document only when it moved (on Redis a published message makes it read at once), reads the
health registry's cached results, and recompiles when anything changed. So a change made by
any process reaches every process within about ``sync_interval``.

Writes go to the store first (an atomic compare-and-set), are adopted locally at once, then
audited (``history``) and evented (``FlagChanged``). If the store is unreachable, reads go on
from the last flags read (or ``bootstrap`` before the first read), the fleet's
``FleetStoreDegraded`` event says so, and writes raise ``StoreError``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import Duration, integer, optional_duration
from buttress.degrade._levels import LevelSource
from buttress.degrade.flags._events import FlagChanged, announce
from buttress.degrade.flags._model import Flag
from buttress.degrade.flags._persist import (
    FlagChange,
    Repository,
    export_document,
    parse_import,
)
from buttress.degrade.flags._view import FlagView
from buttress.errors import ConfigError, StoreError
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored
from buttress.fleet._sync import SYNCER
from buttress.health import HealthRegistry
from buttress.stores import DEFAULT_PREFIX, RedisStore, Store, store_from_url

__all__ = ["DEFAULT_URL", "FlagStore"]

logger = logging.getLogger("buttress.flags")

DEFAULT_URL = "sqlite:///.buttress/flags.db"
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

Diff = tuple[str, Flag | None, Flag | None]


class FlagStore(FlagView):
    """Feature flags in ``store`` (a ``Store`` or a URL; default ``sqlite:///.buttress/flags.db``).

    ``namespace="default"`` separates flag sets in one store. ``levels`` (a ``LevelSource``,
    e.g. a ``DegradationManager``) and ``health`` (a ``HealthRegistry``) feed flags with
    ``off_at`` and ``requires``. ``sync_interval=0.5`` s (None: only explicit ``refresh()``),
    ``audit_ttl`` (90 days; None: forever), ``bootstrap`` flags serve until the store is first
    read, ``cache_size=4096`` bucket results per flag, ``clock`` stamps the audit entries.
    A store built from a URL (its keys under ``prefix``) is closed by ``close()``.
    """

    def __init__(
        self,
        store: Store | str = DEFAULT_URL,
        *,
        namespace: str = "default",
        levels: LevelSource | None = None,
        health: HealthRegistry | None = None,
        sync_interval: Duration | None = 0.5,
        audit_ttl: Duration | None = timedelta(days=90),
        bootstrap: Iterable[Flag] = (),
        cache_size: int = 4096,
        clock: Clock | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise ConfigError("namespace", namespace, "must be 1-64 letters, digits, '.', '_', '-'")
        self._interval = optional_duration("sync_interval", sync_interval)
        ttl = optional_duration("audit_ttl", audit_ttl)
        size = integer("cache_size", cache_size)
        super().__init__(bootstrap, levels, health, size, clock or SYSTEM_CLOCK)
        if isinstance(store, str):
            _make_directory(store)
            self._store: Store = store_from_url(store, prefix=prefix, clock=clock)
            self._owned = True
        else:
            self._store, self._owned = store, False
        self.namespace = namespace
        self._repo = Repository(self._store, namespace, ttl)
        self._lock = threading.RLock()
        self._seen: int | None = None
        self._degraded = False
        self._closed = False
        self.channel = self._repo.channel
        self.due = 0.0
        self.refresh()
        if self._interval is not None:
            SYNCER.add(self)

    @property
    def degraded(self) -> bool:
        """Whether the last attempt to read the store failed."""
        return self._degraded

    @property
    def url(self) -> str:
        """The store's URL, password masked."""
        return self._store.url

    def describe(self) -> dict[str, Any]:
        """The store as plain data: ``namespace``, ``store`` (its URL, password masked),
        ``version``, ``degraded`` and ``flags`` (each flag's ``view``)."""
        return {
            "namespace": self.namespace,
            "store": self.url,
            "version": self.version,
            "degraded": self.degraded,
            "flags": self.views(),
        }

    # -- writes ---------------------------------------------------------------------------------

    def create(self, flag: Flag, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Add a new flag; ConfigError if one has its name."""

        def mutate(flags: dict[str, Flag]) -> list[Diff]:
            if flag.name in flags:
                raise ConfigError("name", flag.name, "is taken by an existing flag")
            flags[flag.name] = flag
            return [(flag.name, None, flag)]

        return self._write("create", mutate, actor, reason)[0]

    def put(self, flag: Flag, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Create ``flag`` or replace the flag of that name."""

        def mutate(flags: dict[str, Flag]) -> list[Diff]:
            before = flags.get(flag.name)
            if before == flag:
                return []
            flags[flag.name] = flag
            return [(flag.name, before, flag)]

        return self._one(
            "update" if flag.name in self._flags else "create", mutate, actor, reason, flag.name
        )

    def update(
        self, name: str, *, actor: str = "app", reason: str | None = None, **changes: Any
    ) -> FlagChange:
        """Change fields of flag ``name`` (``rollout=25``, ``rules=[...]``...); KeyError if
        there is no such flag, ConfigError for a bad value."""
        return self._change("update", name, changes, actor, reason)

    def enable(self, name: str, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Switch flag ``name`` on (a killed flag stays off until revived)."""
        return self._change("enable", name, {"enabled": True}, actor, reason)

    def disable(self, name: str, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Switch flag ``name`` off."""
        return self._change("disable", name, {"enabled": False}, actor, reason)

    def set_rollout(
        self, name: str, percent: int, *, actor: str = "app", reason: str | None = None
    ) -> FlagChange:
        """Serve flag ``name`` to ``percent`` (0-100) of subjects."""
        return self._change("rollout", name, {"rollout": percent}, actor, reason)

    def kill(self, name: str, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """The kill switch: flag ``name`` is off for everyone, whatever else it says, until
        ``revive``."""
        return self._change("kill", name, {"killed": True}, actor, reason)

    def revive(self, name: str, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Release the kill switch of flag ``name``."""
        return self._change("revive", name, {"killed": False}, actor, reason)

    def delete(self, name: str, *, actor: str = "app", reason: str | None = None) -> FlagChange:
        """Remove flag ``name``; KeyError if there is none."""

        def mutate(flags: dict[str, Flag]) -> list[Diff]:
            before = _existing(flags, name)
            del flags[name]
            return [(name, before, None)]

        return self._one("delete", mutate, actor, reason, name)

    def import_flags(
        self,
        data: object,
        *,
        replace: bool = False,
        actor: str = "app",
        reason: str | None = None,
    ) -> list[FlagChange]:
        """Create or replace the flags of an export document (JSON text, or its parsed form);
        with ``replace`` also delete the flags it does not list. One audit entry per flag
        changed. Validated before anything is written (ConfigError naming the field)."""
        incoming = parse_import(data)

        def mutate(flags: dict[str, Flag]) -> list[Diff]:
            diffs: list[Diff] = []
            wanted = {flag.name for flag in incoming}
            if replace:
                for name in [n for n in flags if n not in wanted]:
                    diffs.append((name, flags.pop(name), None))
            for flag in incoming:
                before = flags.get(flag.name)
                if before != flag:
                    flags[flag.name] = flag
                    diffs.append((flag.name, before, flag))
            return diffs

        return self._write("import", mutate, actor, reason)

    def export(self) -> dict[str, Any]:
        """Every flag in the export format (``import_flags`` reads it back)."""
        return export_document(self.namespace, self._version, self._flags.values())

    def history(
        self, *, limit: int = 50, before: int | None = None, flag: str | None = None
    ) -> list[FlagChange]:
        """The newest audited changes, newest first (of ``flag`` only, if given); ``before``
        (an id) pages back. Reads the store."""
        return self._repo.history(integer("limit", limit), before, flag)

    def _change(
        self, action: str, name: str, changes: dict[str, Any], actor: str, reason: str | None
    ) -> FlagChange:
        def mutate(flags: dict[str, Flag]) -> list[Diff]:
            before = _existing(flags, name)
            after = before.replace(**changes)
            if after == before:
                return []
            flags[name] = after
            return [(name, before, after)]

        return self._one(action, mutate, actor, reason, name)

    def _one(
        self,
        action: str,
        mutate: Callable[[dict[str, Flag]], list[Diff]],
        actor: str,
        reason: str | None,
        name: str,
    ) -> FlagChange:
        changes = self._write(action, mutate, actor, reason)
        if changes:
            return changes[0]
        # Nothing changed (enable of an enabled flag): still say what was asked, unaudited.
        current = self._flags.get(name)
        data = None if current is None else current.to_dict()
        return FlagChange(0, self._clock.time(), actor, action, name, data, data, reason)

    def _write(
        self,
        action: str,
        mutate: Callable[[dict[str, Flag]], list[Diff]],
        actor: str,
        reason: str | None,
    ) -> list[FlagChange]:
        if not isinstance(actor, str) or not actor:
            raise ConfigError("actor", actor, "must say who makes the change")
        with self._lock:
            diffs, version, flags = self._repo.change(mutate)
            if diffs:
                self._seen = None  # read the counter again at the next refresh
            self._adopt(version, flags)
        changes = []
        for name, before, after in diffs:
            entry = FlagChange(
                0,
                self._clock.time(),
                actor,
                action,
                name,
                None if before is None else before.to_dict(),
                None if after is None else after.to_dict(),
                reason,
            )
            try:
                changes.append(self._repo.record(entry))
            except StoreError as exc:
                raise StoreError(f"flag {name!r}: {action} applied but not audited: {exc}") from exc
            announce(FlagChanged(name, entry.time, action, actor, reason))
        return changes

    # -- refresh --------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Read the store if it changed and the health of required checks, now; True if the
        flags in use changed. The sync thread calls this every ``sync_interval``."""
        with self._lock:
            changed = self._pull()
            failing = self._failing_checks()
            if failing != self._failing:
                self._failing = failing
                self._compile()
                changed = True
            self._watch()
            return changed

    def _pull(self) -> bool:
        try:
            counter = self._repo.changes()
            changed = False
            if counter != self._seen:
                version, flags = self._repo.load()
                self._seen = counter
                changed = self._adopt(version, flags)
        except StoreError as exc:
            if not self._degraded:
                self._degraded = True
                source = f"flags:{self.namespace}"
                announce(FleetStoreDegraded(source, self._clock.time(), self.url, str(exc)))
            return False
        if self._degraded:
            self._degraded = False
            announce(FleetStoreRestored(f"flags:{self.namespace}", self._clock.time(), self.url))
        return changed

    # -- the sync thread's side -----------------------------------------------------------------

    def pubsub_client(self) -> Any | None:
        """The redis-py client to subscribe with (Redis stores only)."""
        return self._store.client if isinstance(self._store, RedisStore) else None

    def receive(self, data: bytes) -> None:
        """Another process changed the flags (a Redis message): refresh at once."""
        SYNCER.nudge(self)

    def sync(self) -> None:
        """Refresh now; never raises (the sync thread calls it)."""
        self.due = time.monotonic() + (self._interval or 0.5)
        try:
            self.refresh()
        except Exception:  # a bug must not kill the sync thread
            logger.exception("refreshing the flags of namespace %r failed", self.namespace)

    def close(self) -> None:
        """Stop syncing and close the store if it was built from a URL; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._interval is not None:
            SYNCER.remove(self)
        if self._owned:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FlagStore({self.url!r}, namespace={self.namespace!r}, flags={len(self._flags)})"


def _existing(flags: dict[str, Flag], name: str) -> Flag:
    try:
        return flags[name]
    except KeyError:
        raise KeyError(f"no flag named {name!r}") from None


def _make_directory(url: str) -> None:
    """Create the directory of a ``sqlite:///`` file (the default is ``.buttress/``)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        folder = os.path.dirname(path)
        if path != ":memory:" and folder:
            os.makedirs(folder, exist_ok=True)
