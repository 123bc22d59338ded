"""FlagStore: reads from the cache, audited writes, import and export, an unreachable store."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.degrade.flags import Flag, FlagChanged, FlagRule, FlagStore, Variant
from buttress.errors import ConfigError, StoreError
from buttress.fleet import FleetStoreDegraded
from buttress.stores import MemoryStore
from buttress.testing import ManualClock, RecordingListener
from tests.servers import stopped_port


def test_create_then_evaluate(flags: FlagStore) -> None:
    """A created flag is readable and evaluated at once; a second create of the name fails."""
    flags.create(Flag("checkout", enabled=True))
    assert "checkout" in flags
    assert len(flags) == 1
    assert flags.get("checkout").enabled
    assert flags.enabled("checkout")
    with pytest.raises(ConfigError) as caught:
        flags.create(Flag("checkout"))
    assert caught.value.field == "name"


def test_every_change_is_audited(flags: FlagStore, clock: ManualClock) -> None:
    """Each write leaves who, what, before, after, when and why in the history, newest first."""
    flags.create(Flag("f"), actor="alice", reason="new")
    clock.advance(5)
    flags.set_rollout("f", 30, actor="bob", reason="ramp")
    flags.enable("f", actor="bob")
    history = flags.history()
    assert [c.action for c in history] == ["enable", "rollout", "create"]
    rollout = history[1]
    assert (rollout.actor, rollout.flag, rollout.reason) == ("bob", "f", "ramp")
    assert rollout.before is not None
    assert rollout.before["rollout"] == 100
    assert rollout.after is not None
    assert rollout.after["rollout"] == 30
    assert rollout.time == clock.time()
    assert history[2].before is None
    assert history[2].time == clock.time() - 5
    assert rollout.to_dict()["time"].endswith("Z")


def test_a_change_that_changes_nothing_is_not_written(flags: FlagStore) -> None:
    """Enabling an enabled flag writes no version and no audit entry."""
    flags.create(Flag("f", enabled=True))
    version = flags.version
    change = flags.enable("f")
    assert change.id == 0
    assert flags.version == version
    assert len(flags.history()) == 1


def test_kill_switch_holds_until_revived(flags: FlagStore) -> None:
    """A killed flag stays off through enable and targeting; revive brings it back."""
    flags.create(Flag("f", enabled=True, rules=[FlagRule("user", "in", ["vip"])]))
    flags.kill("f", reason="incident")
    flags.enable("f")
    assert not flags.enabled("f", user="vip")
    assert flags.status("f") == "killed"
    flags.revive("f")
    assert flags.enabled("f", user="vip")


def test_bad_update_and_unknown_flag(flags: FlagStore) -> None:
    """A bad value raises ConfigError and writes nothing; an unknown flag raises KeyError."""
    flags.create(Flag("f"))
    with pytest.raises(ConfigError):
        flags.update("f", rollout=500)
    assert flags.get("f").rollout == 100
    assert len(flags.history()) == 1
    with pytest.raises(KeyError):
        flags.enable("nope")
    with pytest.raises(KeyError):
        flags.delete("nope")
    with pytest.raises(ConfigError):
        flags.create(Flag("g"), actor="")


def test_update_and_delete(flags: FlagStore) -> None:
    """update() changes the named fields only; delete() removes the flag and is audited."""
    flags.create(Flag("f", description="keep"))
    flags.update("f", rules=[FlagRule("tenant", "in", ["acme"])], rollout=0, enabled=True)
    assert flags.get("f").description == "keep"
    assert flags.enabled("f", tenant="acme")
    assert not flags.enabled("f", tenant="x")
    change = flags.delete("f", reason="done")
    assert change.after is None
    assert "f" not in flags
    assert not flags.enabled("f")


def test_unknown_flag_gives_the_default_and_warns_once(
    flags: FlagStore, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown name answers the caller's default and logs one warning per name."""
    with caplog.at_level(logging.WARNING, logger="buttress.flags"):
        assert flags.enabled("ghost") is False
        assert flags.enabled("ghost", default=True) is True
        assert flags.variant("ghost", default="x") == "x"
    assert len([r for r in caplog.records if "ghost" in r.getMessage()]) == 1
    assert flags.evaluate("ghost").reason == "NOT_FOUND"


def test_changes_are_evented(flags: FlagStore) -> None:
    """Every write emits FlagChanged with the action and the actor."""
    with RecordingListener() as events:
        flags.create(Flag("f"), actor="ops")
        flags.disable("f", actor="ops")  # already off: no event
        flags.enable("f", actor="ops")
    changes = events.of(FlagChanged)
    assert [(e.source, e.action, e.actor) for e in changes] == [
        ("f", "create", "ops"),
        ("f", "enable", "ops"),
    ]


def test_export_import_round_trip(make_flags: Callable[..., FlagStore]) -> None:
    """An export imported into another store gives the same flags, each change audited."""
    source = make_flags()
    source.create(Flag("a", enabled=True, rollout=5))
    source.create(Flag("b", variants=[Variant("x", 2, {"k": 1}), Variant("y")]))
    text = json.dumps(source.export())
    target = make_flags()
    target.create(Flag("old"))
    changes = target.import_flags(text, actor="ci")
    assert sorted(c.flag for c in changes) == ["a", "b"]
    assert target.get("a") == source.get("a")
    assert target.get("b") == source.get("b")
    assert "old" in target
    assert target.import_flags(text) == []  # nothing new
    replaced = target.import_flags(source.export(), replace=True)
    assert [(c.flag, c.after) for c in replaced] == [("old", None)]
    assert [f.name for f in target.flags()] == ["a", "b"]


def test_invalid_import_writes_nothing(flags: FlagStore) -> None:
    """A document with one bad flag is refused before anything is written, naming the field."""
    document = {"flags": [{"name": "ok"}, {"name": "bad", "rollout": 300}]}
    with pytest.raises(ConfigError) as caught:
        flags.import_flags(document)
    assert caught.value.field == "flags[1].rollout"
    assert len(flags) == 0
    with pytest.raises(ConfigError):
        flags.import_flags({"format": "other/9", "flags": []})
    with pytest.raises(ConfigError):
        flags.import_flags([{"name": "a"}, {"name": "a"}])


def test_status_and_describe(flags: FlagStore) -> None:
    """status() says on, partial, off or killed; describe() lists them with the store."""
    flags.create(Flag("on", enabled=True))
    flags.create(Flag("partial", enabled=True, rollout=10))
    flags.create(Flag("off"))
    flags.create(Flag("killed", enabled=True, killed=True))
    described = flags.describe()
    assert (described["namespace"], described["store"], described["version"]) == (
        "default",
        "memory://",
        4,
    )
    assert {d["name"]: d["status"] for d in described["flags"]} == {
        "killed": "killed",
        "off": "off",
        "on": "on",
        "partial": "partial",
    }


def test_history_pages_filters_and_expires(
    make_flags: Callable[..., FlagStore], clock: ManualClock
) -> None:
    """history() pages back with before, filters by flag, and entries expire after audit_ttl."""
    flags = make_flags(MemoryStore(clock=clock), audit_ttl=60)
    for name in ("a", "b", "c"):
        flags.create(Flag(name))
    page = flags.history(limit=2)
    assert [c.flag for c in page] == ["c", "b"]
    assert [c.flag for c in flags.history(before=page[-1].id)] == ["a"]
    assert [c.flag for c in flags.history(flag="b")] == ["b"]
    clock.advance(61)
    assert flags.history() == []


def test_two_stores_share_one_backend(make_flags: Callable[..., FlagStore]) -> None:
    """A second FlagStore on the same store sees a change at its next refresh."""
    shared = MemoryStore()
    first, second = make_flags(shared), make_flags(shared)
    first.create(Flag("f", enabled=True))
    assert not second.enabled("f")
    assert second.refresh() is True
    assert second.enabled("f")
    assert second.refresh() is False


def test_concurrent_writers_lose_nothing(
    make_flags: Callable[..., FlagStore], tmp_path: Path
) -> None:
    """Eight threads with their own FlagStore on one SQLite file each create flags: all land."""
    url = f"sqlite:///{tmp_path}/flags.db"
    stores = [make_flags(url) for _ in range(8)]

    def work(index: int) -> None:
        for n in range(5):
            stores[index].create(Flag(f"t{index}-{n}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stores[0].refresh()
    assert len(stores[0]) == 40
    assert len(stores[0].history(limit=100)) == 40


def test_sqlite_keeps_flags_across_restarts(
    make_flags: Callable[..., FlagStore], tmp_path: Path
) -> None:
    """Flags written to SQLite are there for a store opened later; the folder is created."""
    url = f"sqlite:///{tmp_path}/state/flags.db"
    make_flags(url).create(Flag("f", enabled=True, rollout=40))
    again = make_flags(url)
    assert again.get("f").rollout == 40
    assert again.version == 1


def test_unreachable_store_serves_bootstrap(make_flags: Callable[..., FlagStore]) -> None:
    """With the store down, bootstrap flags serve, the store is degraded (evented), writes fail."""
    url = f"redis://127.0.0.1:{stopped_port()}/0"
    with RecordingListener() as events:
        flags = make_flags(url, bootstrap=[Flag("f", enabled=True)])
    assert flags.degraded
    assert flags.version == -1
    assert flags.enabled("f")
    assert events.of(FleetStoreDegraded)[0].source == "flags:default"
    with pytest.raises(StoreError):
        flags.disable("f")
    assert flags.refresh() is False
    assert flags.enabled("f")


def test_namespaces_are_separate(make_flags: Callable[..., FlagStore]) -> None:
    """Two namespaces in one store hold different flags; a bad namespace is refused."""
    shared = MemoryStore()
    make_flags(shared, namespace="a").create(Flag("f"))
    assert "f" not in make_flags(shared, namespace="b")
    with pytest.raises(ConfigError):
        make_flags(shared, namespace="no spaces")
