"""``[limits]``, ``[concurrency]``, ``[throttles]`` and ``[queues]`` in buttress.toml: built into
the registry, usable in pipelines, and every mistake reported with its path."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from buttress.errors import LoadShedError, RateLimitedError
from buttress.ratelimit import (
    GCRA,
    AdaptiveConcurrency,
    AdaptiveThrottle,
    ConcurrencyLimiter,
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    WorkQueue,
)
from buttress.testing import ManualClock

from .conftest import Loader

Errors = Callable[..., list[str]]

ALL_KINDS = """
[limits.api]
algorithm = "gcra"
rate = "120/minute"
burst = 2

[limits.clients]
algorithm = "sliding_window_counter"
limit = 100
window = "1 hour"
keyed = true

[concurrency.db]
max = 3

[concurrency.adaptive]
algorithm = "gradient2"
max_limit = 50
on = "ConnectionError"

[throttles.search]
k = 1.5
window = 60

[queues.emails]
handler = "builtins.len"
workers = 2
max_workers = 4
priorities = 3
deadline = 30

[pipelines.partner]
policies = ["throttle.search", "concurrency.db", "limiter.api"]
"""


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('algorithm = "token_bucket"\nrate = 10\nburst = 5', TokenBucket(10, 5)),
        ('algorithm = "leaky_bucket"\nrate = "5/s"\ncapacity = 3', LeakyBucket(5, 3)),
        ('algorithm = "gcra"\nrate = "60/minute"\nburst = 1', GCRA(1, 1)),
        ('algorithm = "fixed_window"\nlimit = 10\nwindow = 60', FixedWindow(10, 60)),
        ('algorithm = "sliding_window_log"\nlimit = 5\nwindow = "1s"', SlidingWindowLog(5, 1)),
        (
            'algorithm = "sliding_window_counter"\nlimit = 5\nwindow = "1 minute"',
            SlidingWindowCounter(5, 60),
        ),
    ],
)
def test_each_algorithm_is_built(load: Loader, table: str, expected: object) -> None:
    """Each algorithm name builds that algorithm with its two parameters (rates and windows as
    numbers or text)."""
    limiter = load(f"[limits.api]\n{table}\n").registry.get("api", "limiter")
    assert isinstance(limiter, RateLimiter)
    assert limiter.algorithm == expected
    assert limiter.name == "api"


def test_every_kind_is_registered_and_usable(load: Loader, clock: ManualClock) -> None:
    """Limiters, concurrency limiters (fixed and adaptive), throttles and queues land in the
    registry under their kinds, with their options, on the configuration's clock."""
    registry = load(ALL_KINDS).registry
    assert [x.name for x in registry.limiters()] == ["api", "clients"]
    assert registry.is_keyed("clients")
    assert not registry.is_keyed("api")
    db, adaptive = registry.get("db", "concurrency"), registry.get("adaptive", "concurrency")
    assert isinstance(db, ConcurrencyLimiter)
    assert db.options.max == 3
    assert isinstance(adaptive, AdaptiveConcurrency)
    assert adaptive.options.algorithm == "gradient2"
    assert adaptive.options.max_limit == 50
    assert adaptive.options.on is ConnectionError
    throttle = registry.get("search", "throttle")
    assert isinstance(throttle, AdaptiveThrottle)
    assert throttle.options.k == 1.5
    queue = registry.get("emails", "queue")
    assert isinstance(queue, WorkQueue)
    assert (queue.options.workers, queue.options.max_workers) == (2, 4)
    assert (queue.options.priorities, queue.options.deadline) == (3, 30)
    limiter = registry.get("api", "limiter")
    assert limiter.try_acquire().allowed
    assert limiter.try_acquire().allowed
    assert not limiter.try_acquire().allowed
    clock.advance(0.5)  # the configuration's ManualClock drives the limiter
    assert limiter.try_acquire().allowed


def test_a_pipeline_uses_them_by_name(load: Loader) -> None:
    """A pipeline names a limiter, a concurrency limiter and a throttle; the limiter refuses
    with RateLimitedError once its burst is spent."""
    registry = load(ALL_KINDS).registry
    pipeline = registry.get("partner", "pipeline")
    assert [type(p).__name__ for p in pipeline.policies] == [
        "AdaptiveThrottle",
        "ConcurrencyLimiter",
        "RateLimiter",
    ]
    assert pipeline.call(lambda: 1) + pipeline.call(lambda: 1) == 2
    with pytest.raises(RateLimitedError) as refused:
        pipeline.call(lambda: 1)
    assert refused.value.retry_after == pytest.approx(0.5)


def test_a_full_concurrency_limiter_sheds(load: Loader) -> None:
    """A configured concurrency limiter of 1 refuses a nested second call with LoadShedError."""
    limiter = load("[concurrency.one]\nmax = 1\n").registry.get("one", "concurrency")

    def nested() -> None:
        limiter.call(lambda: None)

    with pytest.raises(LoadShedError):
        limiter.call(nested)


def test_environment_and_profiles_reach_them(load: Loader) -> None:
    """A BUTTRESS_* override sets a limiter's option; a profile table changes a queue's."""
    config = load(
        '[limits.api]\nalgorithm = "token_bucket"\nrate = 10\nburst = 5\n\n'
        "[queues.q]\nhandler = 'builtins.len'\n\n"
        "[profiles.testing.queues.q]\nworkers = 3\n",
        env={"BUTTRESS_LIMITS__API__BURST": "2"},
        profile="testing",
    )
    assert config.registry.get("api", "limiter").algorithm == TokenBucket(10, 2)
    assert config.registry.get("q", "queue").options.workers == 3


def test_config_show_lists_them(load: Loader) -> None:
    """The effective configuration holds the new sections as written."""
    config = load(ALL_KINDS)
    assert config.data["limits"]["clients"]["keyed"] is True
    assert config.data["queues"]["emails"]["handler"] == "builtins.len"
    assert '[limits.api]\nalgorithm = "gcra"' in config.to_toml()


def test_limiter_mistakes_are_reported_with_their_paths(errors: Errors) -> None:
    """Unknown algorithm (with a hint), foreign and missing parameters, bad values, a bad
    keyed flag and an unknown store: each at its own path."""
    found = errors(
        """
[limits.a]
algorithm = "token_bukket"

[limits.b]
algorithm = "gcra"
rate = 10
limit = 3

[limits.c]
algorithm = "fixed_window"
limit = 0
window = 10

[limits.d]
algorithm = "token_bucket"
rate = "ten per second"
burst = 2
keyed = "yes"

[limits.e]
algorithm = "fixed_window"
limit = 1
window = 1
store = "redis"

[limits.f]
rate = 3
"""
    )
    assert found[0].startswith("limits.a.algorithm: must be one of token_bucket, leaky_bucket")
    assert "(did you mean 'token_bucket'?), got 'token_bukket'" in found[0]
    assert found[1:] == [
        "limits.b.limit: does not apply to algorithm 'gcra' (it takes rate and burst), got 3",
        "limits.b.burst: is required by algorithm 'gcra' (it takes rate and burst)",
        "limits.c.limit: must be an integer >= 1, got 0",
        "limits.d.keyed: must be true or false, got 'yes'",
        found[5],
        'limits.e.store: must be "memory" or "fleet" (the [fleet] store), got \'redis\'',
        "limits.f.algorithm: is required",
    ]
    assert found[5].startswith("limits.d.rate: ")
    assert "'ten per second'" in found[5]


def test_shedder_and_queue_mistakes_are_reported(errors: Errors) -> None:
    """Options of the other concurrency algorithm, a missing max or handler, a bad k and an
    unknown algorithm (then taken as "fixed", which needs max) are errors at their paths."""
    found = errors(
        """
[concurrency.a]
min_limit = 2

[concurrency.b]
algorithm = "aimd"
max = 4
smoothing = 0.5

[concurrency.c]
algorithm = "vegas"

[throttles.t]
k = 0.5

[queues.q]
workers = 2
max_size = 0

[queues.r]
handler = "builtins.no_such_function"
"""
    )
    assert found == [
        'concurrency.a.min_limit: applies to algorithm "aimd" or "gradient2", not "fixed" '
        "(it takes max), got 2",
        'concurrency.a.max: is required (or choose algorithm "aimd" or "gradient2")',
        "concurrency.b.max: does not apply to algorithm 'aimd' (use max_limit), got 4",
        "concurrency.b.smoothing: does not apply to algorithm 'aimd', got 0.5",
        'concurrency.c.algorithm: must be "fixed", "aimd" or "gradient2", got \'vegas\'',
        'concurrency.c.max: is required (or choose algorithm "aimd" or "gradient2")',
        "throttles.t.k: must be a finite number >= 1, got 0.5",
        "queues.q.handler: is required",
        "queues.q.max_size: must be an integer >= 1, got 0",
        found[9],
    ]
    assert found[9].startswith("queues.r.handler: ")
    assert "no_such_function" in found[9]


def test_pipelines_refuse_keyed_limiters_and_queues(errors: Errors) -> None:
    """A keyed limiter in a pipeline is an error (one quota for every client), and a queue is
    not a pipeline policy."""
    found = errors(
        """
[limits.clients]
algorithm = "fixed_window"
limit = 5
window = 1
keyed = true

[queues.q]
handler = "builtins.len"

[pipelines.p]
policies = ["limiter.clients", "queue.q"]
"""
    )
    assert found[0].startswith("pipelines.p.policies[1]: 'queue.q' is not a 'kind.name'")
    assert found[1].startswith("pipelines.p.policies[0]: 'limiter.clients' is keyed")
    assert len(found) == 2


def test_a_fleet_limit_without_a_fleet_is_an_error(errors: Errors) -> None:
    """store = "fleet" needs a [fleet] table, and says how to add one."""
    found = errors('[limits.a]\nalgorithm = "fixed_window"\nlimit = 1\nwindow = 1\nstore = "fleet"')
    assert found == [
        "limits.a.store: needs the [fleet] store: a valid [fleet] table, store = "
        "\"redis://host:6379/0\", got 'fleet'"
    ]


def test_fleet_limits_need_a_redis_fleet(errors: Errors) -> None:
    """store = "fleet" on a fleet store that is not Redis says why (the limits are Lua scripts
    on Redis) and what to do; lease mode needs a fleet store too."""
    found = errors(
        '[fleet]\nstore = "memory://"\n\n'
        '[limits.a]\nalgorithm = "fixed_window"\nlimit = 1\nwindow = 1\nstore = "fleet"\n\n'
        '[limits.b]\nalgorithm = "fixed_window"\nlimit = 1\nwindow = 1\nlease = true\n'
    )
    assert found == [
        "limits.a.store: the [fleet] store cannot hold rate limits: it must be a RedisStore, "
        "an AsyncRedisStore or a redis:// URL (distributed rate limits run as Lua scripts on "
        "Redis); use a redis:// fleet store, or store = \"memory\", got 'fleet'",
        "limits.b.lease: needs a shared store (store=...), got True",
    ]
