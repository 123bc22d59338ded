"""make_check: every kind built from plain options as buttress.toml declares them; its errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.health import Status
from buttress.health.checks import CHECK_KINDS, check_options, make_check
from buttress.registry import Registry
from tests.servers import HttpServer

from .conftest import Runner

SECRET = "hunter2-but-longer"


def test_every_documented_kind_is_known():
    """The kinds are exactly those of the configuration contract."""
    assert set(CHECK_KINDS) == {
        "postgres",
        "redis",
        "http",
        "tcp",
        "disk",
        "memory",
        "cpu",
        "file_handles",
        "threads",
        "event_loop",
        "breakers",
        "command",
    }


async def test_datastore_kinds_from_options(run: Runner, postgres_dsn: str, redis_url: str):
    """postgres and redis checks are built from dsn/url and the generic options, and pass."""
    db = make_check(
        "db",
        "postgres",
        {"dsn": postgres_dsn, "critical": True, "timeout": 2, "groups": ["readiness"]},
    )
    cache = make_check(
        "cache",
        "redis",
        {"url": redis_url, "critical": False, "ttl": 10, "memory_warn_above": 80},
    )
    assert (db.name, db.timeout, db.critical, db.groups) == ("db", 2.0, True, {"readiness"})
    assert (cache.critical, cache.ttl) == (False, 10.0)
    assert (await run(db)).status is Status.PASS
    assert (await run(cache)).status is Status.PASS


async def test_network_kinds_from_options(run: Runner, http_server: HttpServer):
    """http and tcp checks are built from their options and pass against a real server."""
    api = make_check(
        "api",
        "http",
        {
            "url": http_server.url("/created"),
            "expected_status": [200, 201],
            "method": "GET",
            "headers": {"X-Probe": "1"},
            "warn_above": 500,
            "fail_above": 2000,
        },
    )
    port = make_check("port", "tcp", {"host": "127.0.0.1", "port": http_server.port})
    assert (await run(api)).status is Status.PASS
    assert (await run(port)).status is Status.PASS


@pytest.mark.parametrize(
    ("kind", "options", "key"),
    [
        ("disk", {"path": "/", "warn_above": 100, "fail_above": 100}, "x:utilization"),
        ("memory", {"warn_above": 100, "rss_warn_above_mb": 1_000_000}, "x:utilization"),
        ("cpu", {"interval": 0.02, "warn_above": 100}, "x:utilization"),
        ("file_handles", {"warn_above": 90, "fail_above": 99}, "x:utilization"),
        ("threads", {"warn_above": 10_000}, "x:count"),
        ("event_loop", {"warn_above": 1000, "groups": ["liveness", "readiness"]}, "x:lag"),
    ],
)
async def test_system_kinds_from_options(run: Runner, kind, options, key):
    """Each system kind is built with its own options and passes under generous thresholds."""
    check = make_check("x", kind, options)
    assert check.key == key
    assert check.component_type == "system"
    assert (await run(check)).status is Status.PASS


async def test_breakers_kind_uses_the_given_registry(run: Runner):
    """breakers reads the registry passed with registry=."""
    registry = Registry()
    registry.breaker("payments").trip()
    check = make_check("cb", "breakers", {"critical": True}, registry=registry)
    result = await run(check)
    assert result.status is Status.WARN
    assert result.observed_value == 1


async def test_command_kind_from_options(run: Runner, tmp_path: Path):
    """command runs a list or a shell string, with cwd and env."""
    listed = make_check("c1", "command", {"command": [sys.executable, "-c", "print('fine')"]})
    shelled = make_check(
        "c2",
        "command",
        {
            "command": "echo $GREETING",
            "shell": True,
            "env": {"GREETING": "hi"},
            "cwd": str(tmp_path),
        },
    )
    assert (await run(listed)).output == "fine"
    assert (await run(shelled)).output == "hi"


def test_only_disk_runs_in_a_thread():
    """Every built-in is async (run in the loop) except disk, which may block on a mount."""
    registry = Registry()
    required = {
        "postgres": {"dsn": "postgresql://db/app"},
        "redis": {"url": "redis://cache"},
        "http": {"url": "http://api/"},
        "tcp": {"host": "api", "port": 80},
        "command": {"command": "true"},
    }
    for kind in CHECK_KINDS:
        check = make_check("x", kind, required.get(kind, {}), registry=registry)
        assert check.is_async is (kind != "disk"), kind


def test_groups_accept_one_name_any_iterable_or_none():
    """groups may be a name, a list, any iterable, or empty (a check run only by name)."""
    assert make_check("d", "disk", {"groups": "startup"}).groups == {"startup"}
    both = make_check("d", "disk", {"groups": (g for g in ["startup", "readiness"])})
    assert both.groups == {"startup", "readiness"}
    assert make_check("d", "disk", {"groups": []}).groups == frozenset()


def test_check_options_lists_generic_and_own_options():
    """check_options(kind) gives the generic options plus the kind's own."""
    options = check_options("tcp")
    assert {"critical", "timeout", "ttl", "groups", "component_type", "host", "port"} <= set(
        options
    )
    assert "dsn" not in options


def test_a_kind_key_equal_to_the_kind_is_accepted():
    """options may carry the kind itself (as a TOML table does); a different one is an error."""
    assert make_check("d", "disk", {"kind": "disk"}).name == "d"
    with pytest.raises(ConfigError) as info:
        make_check("d", "disk", {"kind": "tcp"})
    assert info.value.field == "kind"


def test_unknown_kind_names_the_kind_field():
    """An unknown kind is a ConfigError on kind that lists the known ones."""
    with pytest.raises(ConfigError) as info:
        make_check("db", "mongodb", {})
    assert info.value.field == "kind"
    assert "postgres" in str(info.value)


def test_unknown_option_names_the_option_and_masks_secrets():
    """An unknown option is a ConfigError on that option; a DSN in it is masked."""
    dsn = f"postgresql://app:{SECRET}@db:5432/app"
    with pytest.raises(ConfigError) as info:
        make_check("db", "postgres", {"dsn": dsn, "dns": dsn})
    assert info.value.field == "dns"
    assert SECRET not in str(info.value)
    assert "is not an option of a postgres check" in str(info.value)


def test_options_of_one_kind_are_refused_by_another():
    """A threshold of redis is unknown to disk."""
    with pytest.raises(ConfigError) as info:
        make_check("d", "disk", {"memory_warn_above": 10})
    assert info.value.field == "memory_warn_above"


@pytest.mark.parametrize(
    ("kind", "options", "field"),
    [
        ("postgres", {"dsn": "postgresql://db/app", "timeout": -1}, "timeout"),
        ("postgres", {"dsn": "postgresql://db/app", "timeout": "2s"}, "timeout"),
        ("postgres", {"dsn": "postgresql://db/app", "ttl": -5}, "ttl"),
        ("postgres", {"dsn": "postgresql://db/app", "critical": "yes"}, "critical"),
        ("postgres", {"dsn": "postgresql://db/app", "groups": ["ready"]}, "groups"),
        ("postgres", {"dsn": "postgresql://db/app", "groups": ["liveness"]}, "groups"),
        ("postgres", {"dsn": "postgresql://db/app", "component_type": "db"}, "component_type"),
        ("postgres", {}, "dsn"),
        ("redis", {}, "url"),
        ("redis", {"url": "redis://h", "memory_fail_above": 150}, "memory_fail_above"),
        ("http", {}, "url"),
        ("http", {"url": "http://h/", "expected_status": 700}, "expected_status"),
        ("tcp", {"host": "h"}, "port"),
        ("tcp", {"host": "h", "port": 0}, "port"),
        ("disk", {"warn_above": 90, "fail_above": 80}, "warn_above"),
        ("memory", {"rss_fail_above_mb": -1}, "rss_fail_above_mb"),
        ("cpu", {"interval": 0}, "interval"),
        ("threads", {"fail_above": "many"}, "fail_above"),
        ("event_loop", {"groups": "liveness", "component_type": "component"}, "groups"),
        ("command", {}, "command"),
        ("command", {"command": ""}, "command"),
        ("breakers", {}, "kind"),
    ],
)
def test_bad_values_name_their_field(kind: str, options: dict[str, Any], field: str):
    """A bad or missing value is a ConfigError whose field is the bare option name."""
    with pytest.raises(ConfigError) as info:
        make_check("x", kind, options)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("redis", {"url": f"http://user:{SECRET}@cache:6379/0"}),
        ("http", {"url": f"ftp://user:{SECRET}@host/"}),
        ("postgres", {"dsn": f"host=db password={SECRET}", "timeout": 0}),
        ("postgres", {"dsn": f"postgresql://u:{SECRET}@db/app", "fail_above": -1}),
    ],
)
def test_secrets_never_appear_in_errors(kind: str, options: dict[str, Any]):
    """A DSN or URL with a password is masked in every error message."""
    with pytest.raises(ConfigError) as info:
        make_check("x", kind, options)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.value)
