"""``[fleet]`` in buttress.toml: the store settings, shared breakers built on it, the fleet
scheduler, secrets masked, and every mistake reported with its path (no Redis needed here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress._redact import redact
from buttress.breaker import BreakerState, CircuitBreaker
from buttress.config import ConfigFileError, load_config
from buttress.config._fleet import Fleet, FleetSettings
from buttress.fleet import SharedCircuitBreaker
from buttress.ops.scheduler import Scheduler
from buttress.stores import AsyncMemoryStore, MemoryStore

from .conftest import Loader

Errors = Callable[..., list[str]]
PASSWORD = "fleet-s3cret-pw"


def _syncing() -> bool:
    return any(t.name == "buttress-fleet-sync" for t in threading.enumerate())


def test_settings_defaults_and_effective_data(load: Loader) -> None:
    """Only the store is required; the rest has the shared breakers' and scheduler's defaults,
    and the effective configuration shows them."""
    config = load('[fleet]\nstore = "memory://"\n')
    assert isinstance(config.fleet, Fleet)
    assert config.fleet.settings == FleetSettings("memory://")
    assert config.data["fleet"] == {
        "store": "memory://",
        "prefix": "buttress:",
        "sync_interval": 0.25,
        "staleness": 1.0,
        "lock_ttl": 15.0,
    }
    assert load("").fleet is None


def test_shared_breakers_use_the_fleet_store(load: Loader) -> None:
    """shared = true builds a SharedCircuitBreaker on the fleet's one store, with the fleet's
    sync interval; other breakers stay local; close() stops their syncing."""
    config = load(
        '[fleet]\nstore = "memory://"\nsync_interval = 0.5\nstaleness = 2\n\n'
        "[breakers.pay]\nshared = true\nopen_for = 5\n\n"
        "[breakers.ship]\nshared = true\n\n"
        "[breakers.local]\nshared = false\n"
    )
    assert config.fleet is not None
    try:
        pay, ship = config.registry.get("pay", "breaker"), config.registry.get("ship", "breaker")
        assert isinstance(pay, SharedCircuitBreaker)
        assert isinstance(ship, SharedCircuitBreaker)
        assert pay.store is ship.store is config.fleet.store()
        assert isinstance(pay.store, MemoryStore)
        assert pay.options.open_for == 5
        local = config.registry.get("local", "breaker")
        assert type(local) is CircuitBreaker
        assert _syncing()
    finally:
        config.fleet.close()
    assert not _syncing()


def test_two_configurations_share_a_breaker_through_sqlite(tmp_path: Path) -> None:
    """Two processes' configurations on one SQLite fleet store: a trip in one reaches the
    other at its next sync (the same path a Redis fleet takes, without Redis)."""
    path = tmp_path / "buttress.toml"
    path.write_text(
        f'[fleet]\nstore = "sqlite:///{tmp_path}/fleet.db"\n\n[breakers.pay]\nshared = true\n'
    )
    here, there = load_config(path, environ={}), load_config(path, environ={})
    assert here.fleet is not None
    assert there.fleet is not None
    try:
        here.registry.get("pay", "breaker").trip()
        remote = there.registry.get("pay", "breaker")
        remote.sync()
        assert remote.state is BreakerState.FORCED_OPEN
    finally:
        here.fleet.close()
        there.fleet.close()


def test_the_password_is_masked_everywhere(load: Loader, errors: Errors) -> None:
    """The store URL's password never shows: not in config show, the settings' repr, nor an
    error message of the table, and it is registered as a secret for logs."""
    url = f"redis://:{PASSWORD}@localhost:6379/0"
    config = load(f'[fleet]\nstore = "{url}"\n')
    assert config.fleet is not None
    shown = [
        config.to_toml(),
        str(config.masked()),
        repr(config.fleet.settings),
        repr(config.fleet),
    ]
    assert all(PASSWORD not in text for text in shown)
    assert "redis://:***@localhost:6379/0" in config.to_toml()
    assert PASSWORD not in redact(f"AUTH failed for {PASSWORD}")
    found = errors(f'[fleet]\nstore = "redis://:{PASSWORD}@localhost:99999/0"\nlock_ttl = 0\n')
    assert len(found) == 2
    assert all(PASSWORD not in line for line in found)
    assert found[0].startswith("fleet.store: has a bad port")


def test_mistakes_are_reported_with_their_paths(errors: Errors) -> None:
    """A missing store, an unknown key (with a hint), a bad scheme, a prefix with braces and a
    zero duration are each reported at their path."""
    assert errors("[fleet]\nsync_interval = 1\n") == [
        "fleet.store: is required (a store URL, e.g. redis://host:6379/0)"
    ]
    found = errors('[fleet]\nstore = "memory://"\nlok_ttl = 3\nstaleness = 0\n')
    assert found == [
        "fleet.lok_ttl: unknown key (did you mean 'lock_ttl'?)",
        "fleet.staleness: must be a duration > 0 seconds, got 0",
    ]
    assert errors('[fleet]\nstore = "postgres://db/app"\n')[0].startswith(
        "fleet.store: has an unknown scheme"
    )
    assert errors('[fleet]\nstore = "memory://"\nprefix = "{svc}"\n') == [
        "fleet.prefix: must be a string without { or }, got '{svc}'"
    ]
    assert errors('fleet = "redis://x"\n') == ["fleet: must be a table"]


def test_shared_needs_a_fleet(errors: Errors) -> None:
    """shared = true without a [fleet] table is an error saying what to add; a non-boolean is
    one too."""
    assert errors("[breakers.pay]\nshared = true\n") == [
        "breakers.pay.shared: needs the [fleet] store: a valid [fleet] table, store = "
        '"redis://host:6379/0", got True'
    ]
    assert errors('[fleet]\nstore = "memory://"\n\n[breakers.pay]\nshared = "yes"\n') == [
        "breakers.pay.shared: must be true or false, got 'yes'"
    ]


def test_a_failed_load_stops_the_shared_breakers(tmp_path: Path) -> None:
    """When another part of the file is wrong, the shared breakers already built stop syncing
    before the error is raised: nothing keeps running for a configuration that failed."""
    path = tmp_path / "buttress.toml"
    path.write_text(
        '[fleet]\nstore = "memory://"\n\n[breakers.pay]\nshared = true\n\n[server]\nport = -1\n'
    )
    assert not _syncing()
    with pytest.raises(ConfigFileError):
        load_config(path, environ={})
    assert not _syncing()


async def test_the_fleet_scheduler_elects_on_a_store_of_its_own(load: Loader) -> None:
    """fleet.scheduler() leads through a new asyncio store with the configured lease; aclose()
    closes those stores and the sync store."""
    config = load('[fleet]\nstore = "memory://"\nlock_ttl = 30\n')
    assert config.fleet is not None
    scheduler = config.fleet.scheduler(lock_name="jobs")
    assert isinstance(scheduler, Scheduler)
    lock = scheduler.leader_lock
    assert lock is not None
    assert lock.ttl == 30.0
    assert lock.name == "jobs"
    assert isinstance(lock.store, AsyncMemoryStore)
    scheduler.start()
    await scheduler.stop()
    await config.fleet.aclose()
    with pytest.raises(Exception, match="closed"):
        await lock.store.get("anything")
