"""Rate limits and load shedding in ``buttress.toml``: ``[limits.*]``, ``[concurrency.*]``,
``[throttles.*]`` and ``[queues.*]``, built into the registry (kinds ``limiter``,
``concurrency``, ``throttle`` and ``queue``).

.. code-block:: toml

    [limits.partner-api]            # a RateLimiter: one quota, usable in [pipelines]
    algorithm = "gcra"              # token_bucket, leaky_bucket, gcra, fixed_window,
    rate = "100/minute"             # sliding_window_log, sliding_window_counter
    burst = 10
    max_wait = 0.5                  # as a policy: wait this long for a unit, else refuse

    [limits.per-client]             # per key (a client address, an API key)
    algorithm = "sliding_window_counter"
    limit = 1000
    window = "1 hour"
    keyed = true
    store = "fleet"                 # state in the [fleet] store: one quota for the fleet

    [concurrency.db]                # a ConcurrencyLimiter
    max = 20

    [concurrency.api]               # an AdaptiveConcurrency
    algorithm = "gradient2"
    max_limit = 200

    [throttles.search]              # an AdaptiveThrottle
    k = 2.0

    [queues.emails]                 # a WorkQueue
    handler = "myapp.mail.send"
    workers = 4
    priorities = 3

A pipeline names them ``"limiter.partner-api"``, ``"concurrency.db"``, ``"throttle.search"``;
a keyed limiter is refused there (a pipeline takes one unit of the key ``""`` per call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from buttress.config._errors import Problems, suggest
from buttress.config._fleet import NEEDS_FLEET
from buttress.errors import ConfigError
from buttress.ratelimit import (
    GCRA,
    AdaptiveConcurrency,
    AdaptiveThrottle,
    Algorithm,
    ConcurrencyLimiter,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    WorkQueue,
)
from buttress.registry import Registry

if TYPE_CHECKING:
    from buttress.config._fleet import Fleet

__all__ = ["ALGORITHMS", "LIMIT_KINDS", "check_pipelines", "make_limit"]

ALGORITHMS: Final[Mapping[str, tuple[type[Algorithm], tuple[str, str]]]] = {
    "token_bucket": (TokenBucket, ("rate", "burst")),
    "leaky_bucket": (LeakyBucket, ("rate", "capacity")),
    "gcra": (GCRA, ("rate", "burst")),
    "fixed_window": (FixedWindow, ("limit", "window")),
    "sliding_window_log": (SlidingWindowLog, ("limit", "window")),
    "sliding_window_counter": (SlidingWindowCounter, ("limit", "window")),
}
"""``algorithm = "..."`` of ``[limits.*]``: the class and its two parameters."""
PARAMETERS: Final = ("rate", "burst", "capacity", "limit", "window")
CONCURRENCY_ALGORITHMS: Final = ("fixed", "aimd", "gradient2")
LIMIT_KINDS: Final = frozenset({"limiter", "concurrency", "throttle", "queue"})
STORES: Final = ("memory", "fleet")


def make_limit(
    kind: str, name: str, options: dict[str, Any], registry: Registry, fleet: Fleet | None
) -> object:
    """Build and register one entry of a kind in ``LIMIT_KINDS``; ``ConfigError`` names the
    option at fault (``build_entry`` reports it at the entry's path)."""
    rest = dict(options)
    clock = registry.clock
    if kind == "limiter":
        return _limiter(name, rest, registry, fleet)
    if kind == "concurrency":
        return registry.add(_concurrency(name, rest, registry))
    if kind == "throttle":
        return registry.add(AdaptiveThrottle(name=name, clock=clock, **rest))
    handler = rest.pop("handler", None)
    queue = WorkQueue(handler or _stand_in, name=name, clock=clock, **rest)  # check the rest
    if handler is None:
        raise ConfigError("handler", None, "is required (a dotted path to the item handler)")
    return registry.add(queue)


def _stand_in(item: object) -> None:
    """A handler that lets a queue missing its own be checked for its other options."""


def _limiter(name: str, rest: dict[str, Any], registry: Registry, fleet: Fleet | None) -> object:
    keyed = rest.pop("keyed", False)  # checked first: the algorithm may stop at its own error
    if not isinstance(keyed, bool):
        raise ConfigError("keyed", keyed, "must be true or false")
    where = rest.pop("store", "memory")
    if where not in STORES:
        raise ConfigError("store", where, 'must be "memory" or "fleet" (the [fleet] store)')
    if where == "fleet" and fleet is None:
        raise ConfigError("store", where, NEEDS_FLEET)
    chosen = rest.pop("algorithm", None)
    entry = ALGORITHMS.get(chosen) if isinstance(chosen, str) else None
    if entry is None:
        hint = suggest(chosen, ALGORITHMS) if isinstance(chosen, str) else ""
        raise ConfigError("algorithm", chosen, f"must be one of {', '.join(ALGORITHMS)}{hint}")
    cls, wanted = entry
    takes = f"it takes {wanted[0]} and {wanted[1]}"
    for key in PARAMETERS:
        if key in rest and key not in wanted:
            raise ConfigError(key, rest[key], f"does not apply to algorithm {chosen!r} ({takes})")
    missing = [key for key in wanted if key not in rest]
    # A missing parameter's stand-in (1 suits them all) lets the present one be checked first.
    algorithm = cls(*(rest.pop(key, 1) for key in wanted))
    if missing:
        raise ConfigError(missing[0], None, f"is required by algorithm {chosen!r} ({takes})")
    if fleet is None or where == "memory":
        return registry.limiter(name, algorithm, keyed=keyed, **rest)
    try:
        limiter = registry.limiter(name, algorithm, keyed=keyed, store=fleet.store(), **rest)
    except ConfigError as exc:
        if exc.field != "store":
            raise
        raise ConfigError(
            "store",
            where,
            f"the [fleet] store cannot hold rate limits: it {exc.expected}; use a redis:// "
            'fleet store, or store = "memory"',
        ) from None
    return fleet.track(limiter)


def _concurrency(
    name: str, rest: dict[str, Any], registry: Registry
) -> ConcurrencyLimiter | AdaptiveConcurrency:
    chosen = rest.pop("algorithm", "fixed")
    if chosen not in CONCURRENCY_ALGORITHMS:
        hint = suggest(chosen, CONCURRENCY_ALGORITHMS) if isinstance(chosen, str) else ""
        raise ConfigError("algorithm", chosen, f'must be "fixed", "aimd" or "gradient2"{hint}')
    if chosen != "fixed":
        if "max" in rest:
            expected = f"does not apply to algorithm {chosen!r} (use max_limit)"
            raise ConfigError("max", rest["max"], expected)
        return AdaptiveConcurrency(chosen, name=name, clock=registry.clock, **rest)
    for key, value in rest.items():
        if key != "max":
            expected = 'applies to algorithm "aimd" or "gradient2", not "fixed" (it takes max)'
            raise ConfigError(key, value, expected)
    if "max" not in rest:
        raise ConfigError("max", None, 'is required (or choose algorithm "aimd" or "gradient2")')
    return ConcurrencyLimiter(rest["max"], name=name, clock=registry.clock)


def check_pipelines(data: Mapping[str, Any], registry: Registry, problems: Problems) -> None:
    """Report a keyed limiter named in a pipeline: a pipeline takes one unit of the key ``""``
    per call, which would make a per-client limit one quota for everyone."""
    pipelines = data.get("pipelines")
    if not isinstance(pipelines, dict):
        return
    for name, entry in pipelines.items():
        policies = entry.get("policies") if isinstance(entry, dict) else None
        if not isinstance(policies, list):
            continue
        for index, ref in enumerate(policies):
            kind, _, limiter = ref.partition(".") if isinstance(ref, str) else ("", "", "")
            if kind == "limiter" and registry.is_keyed(limiter):
                problems.add(
                    ("pipelines", name, "policies", index),
                    f"{ref!r} is keyed (one quota per client): a pipeline takes one unit of the "
                    'key "" per call; set keyed = false or call the limiter with a key',
                )
