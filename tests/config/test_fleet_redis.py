"""A ``[fleet]`` on the real Redis: two services built from one configuration share a breaker's
state, and the ops servers' schedulers run each periodic job on one of them only."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from buttress.breaker import BreakerState
from buttress.config import Config, load_config
from buttress.ops import create_app, generate_token
from buttress.ops._limits_view import limits_view
from tests.serve_support import ServeProcess
from tests.servers import redis_url


def _delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def fleet_file(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``fleet_file(extra)``: a buttress.toml with a [fleet] on the test Redis under a key
    prefix of its own (deleted afterwards), plus ``extra``."""
    url = redis_url()
    prefix = f"test-config-fleet-{uuid.uuid4().hex[:12]}:"

    def write(extra: str) -> Path:
        path = tmp_path / "buttress.toml"
        path.write_text(f'[fleet]\nstore = "{url}"\nprefix = "{prefix}"\n{extra}')
        return path

    yield write
    _delete_keys(url, prefix)


def _until(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within}s"
        time.sleep(0.01)


def test_two_services_share_a_breaker(fleet_file: Callable[[str], Path]) -> None:
    """A breaker declared shared in one file is one breaker for two services loaded from it: a
    trip in one opens it in the other within a second, a reset closes it in both."""
    path = fleet_file("staleness = 0.2\n\n[breakers.payments]\nshared = true\nopen_for = 30\n")
    here, there = load_config(path, environ={}), load_config(path, environ={})
    assert here.fleet is not None
    assert there.fleet is not None
    try:
        mine = here.registry.get("payments", "breaker")
        theirs = there.registry.get("payments", "breaker")
        assert theirs.state is BreakerState.CLOSED
        mine.trip()
        _until(lambda: theirs.state is BreakerState.FORCED_OPEN, within=1.0)
        theirs.reset()
        _until(lambda: mine.state is BreakerState.CLOSED, within=1.0)
        assert not mine.snapshot().degraded
    finally:
        here.fleet.close()
        there.fleet.close()


def test_two_services_share_a_fleet_rate_limit(fleet_file: Callable[[str], Path]) -> None:
    """A limit with store = "fleet" is one quota for two services loaded from one file, and the
    admin view reads what is left of it from Redis."""
    path = fleet_file(
        '\n[limits.partner]\nalgorithm = "fixed_window"\nlimit = 3\nwindow = 60\nstore = "fleet"\n'
    )
    here, there = load_config(path, environ={}), load_config(path, environ={})
    assert here.fleet is not None
    assert there.fleet is not None
    try:
        mine = here.registry.get("partner", "limiter")
        theirs = there.registry.get("partner", "limiter")
        assert [mine.allow(), theirs.allow(), mine.allow(), theirs.allow()] == [
            True,
            True,
            True,
            False,
        ]
        [view] = limits_view(here.registry)["limiters"]
        assert (view["store"], view["remaining"], view["limit"]) == ("fleet", 0, 3)
        assert view["degraded"] is False
        assert "redis://" not in str(view)
    finally:
        here.fleet.close()
        there.fleet.close()


def _app(config: Config) -> Starlette:
    """The ops app as ``buttress serve`` builds it for a configuration with a [fleet]."""
    assert config.fleet is not None
    app = create_app(config.registry, state_dir=":memory:", scheduler=config.fleet.scheduler())
    app.state.ops.on_shutdown.insert(0, config.fleet.aclose)
    return app


async def test_only_one_service_runs_a_scheduled_job(fleet_file: Callable[[str], Path]) -> None:
    """Two ops apps from one configuration: a periodic job runs on the leader only; when the
    leader stops, the other takes the job over."""
    path = fleet_file("lock_ttl = 1\n")
    first, second = _app(load_config(path, environ={})), _app(load_config(path, environ={}))
    runs: dict[str, int] = {"first": 0, "second": 0}
    for name, app in (("first", first), ("second", second)):

        def tick(who: str = name) -> None:
            runs[who] += 1

        app.state.ops.scheduler.add("tick", tick, interval=0.05, jitter=0)
    await first.state.ops.startup()
    await asyncio.sleep(0.05)  # the first one elects itself before the second asks
    await second.state.ops.startup()
    try:
        deadline = time.monotonic() + 3
        while runs["first"] < 5:
            assert time.monotonic() < deadline, runs
            await asyncio.sleep(0.01)
        assert runs["second"] == 0
        assert first.state.ops.scheduler.is_leader
        assert not second.state.ops.scheduler.is_leader
        await first.state.ops.shutdown()  # releases the lock, then closes its stores
        deadline = time.monotonic() + 3
        while runs["second"] == 0:
            assert time.monotonic() < deadline, "the second service never took over"
            await asyncio.sleep(0.01)
    finally:
        await second.state.ops.shutdown()
        await first.state.ops.shutdown()  # a second shutdown is harmless


@pytest.mark.slow
def test_buttress_serve_runs_jobs_once_per_fleet(
    fleet_file: Callable[[str], Path], tmp_path: Path
) -> None:
    """Two `buttress serve` processes on one [fleet] configuration (testing profile: the
    health monitor every second): one runs the periodic jobs, the other none, and a breaker
    tripped through one's admin API is open in the other's."""
    token, digest = generate_token()
    path = fleet_file(
        "lock_ttl = 5\n\n[breakers.payments]\nshared = true\n\n"
        f'[[server.tokens]]\nname = "ops"\nrole = "operator"\nsha256 = "{digest}"\n'
    )
    auth = {"Authorization": f"Bearer {token}"}
    testing = {"BUTTRESS_PROFILE": "testing"}
    for index in range(2):
        (tmp_path / f"p{index}").mkdir()
    with (
        ServeProcess(tmp_path / "p0", "-c", str(path), env=testing) as first,
        ServeProcess(tmp_path / "p1", "-c", str(path), env=testing) as second,
    ):
        for served in (first, second):
            served.wait_for("/health/live", within=30)

        def health_runs() -> list[int]:
            runs = []
            for served in (first, second):
                jobs = served.client.get("/admin/reliability/jobs", headers=auth).json()["jobs"]
                runs.append(next(j["runs"] for j in jobs if j["name"] == "health-monitor"))
            return runs

        deadline = time.monotonic() + 10
        while max(health_runs()) < 2:
            assert time.monotonic() < deadline, health_runs()
            time.sleep(0.1)
        assert sorted(health_runs())[0] == 0  # one process runs the jobs, the other none
        opened = first.client.post(
            "/admin/reliability/circuit-breakers/payments/open", headers=auth
        )
        assert opened.status_code == 200

        def remote_state() -> str:
            breakers = second.client.get("/admin/reliability/circuit-breakers", headers=auth)
            state: str = breakers.json()["circuit_breakers"][0]["state"]
            return state

        _until(lambda: remote_state() == "forced_open", within=2.0)
        for served in (first, second):
            served.interrupt()
        for served in (first, second):
            _, err = served.ended()
            assert served.returncode == 0, err
            assert "Traceback" not in err
