"""The sans-I/O half of distributed rate limits: which script, keys and arguments a decision
sends to Redis, and what its reply means. Nothing here touches the network.

Every algorithm has a script in ``_lua/`` (``meter.lua`` for the token bucket, leaky bucket
and GCRA; ``fixed.lua``, ``counter.lua``, ``log.lua``) that mirrors its in-memory decision step
for step on the server's clock, in integer microseconds since ``EPOCH``. ``ARGV`` is always
``op, now, *params, *op_args``: ``op`` is ``take`` (any number of costs, decided in order),
``peek`` (one cost) or ``lease`` (a block of units for ``_lease.py``); ``now`` is ``""`` in
production (the script reads ``TIME``) and only a test sets it (see ``server_time_override``
in ``_redis.py``). A decision's reply is four integers: allowed, remaining, retry (us, ``-1``
for never) and reset (us).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from buttress.errors import ConfigError
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._log import SlidingWindowLog
from buttress.ratelimit._meter import Meter
from buttress.ratelimit._window import FixedWindow, SlidingWindowCounter
from buttress.stores import KeyLayout, Script

DEFAULT_FRACTION = 0.01
"""``lease=True``: blocks of at most 1% of the limit."""

__all__ = [
    "EPOCH",
    "Grant",
    "Plan",
    "cost_arg",
    "decision",
    "endpoint",
    "grant",
    "key_pattern",
    "key_text",
    "lease_fraction",
    "plan_for",
]

EPOCH = 1_600_000_000
"""Seconds since 1970 of the scripts' time origin (2020-09-13T12:26:40Z)."""
WIDTH = 4
"""Integers per decision in a ``take`` or ``peek`` reply."""
_INF = math.inf
_new = tuple.__new__


@functools.cache
def _script(name: str) -> Script:
    folder = resources.files("buttress.ratelimit").joinpath("_lua")
    prelude = folder.joinpath("_rl.lua").read_text(encoding="utf-8")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return Script.from_source(f"ratelimit.{name}", prelude + body)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one algorithm runs on Redis: its ``script``, the key ``parts`` after a key's hash
    tag (one per Redis key the script touches) and the ``params`` after ``op`` and ``now``."""

    script: Script
    parts: tuple[str, ...]
    params: tuple[str, ...]

    def keys(self, layout: KeyLayout, base: str) -> tuple[str, ...]:
        """The Redis keys of logical key ``base``: one hash tag, so one Cluster slot."""
        return tuple(layout.key(base, part) for part in self.parts)


def _number(value: float) -> str:
    return repr(float(value))


def _window_us(algorithm: Algorithm) -> str:
    return str(max(1, round(algorithm.period * 1e6)))


def plan_for(algorithm: Algorithm) -> Plan:
    """The plan of ``algorithm`` (windows are rounded to whole microseconds)."""
    if isinstance(algorithm, Meter):
        interval = 1e6 / algorithm.rate
        params = (_number(interval), _number(algorithm.capacity), str(algorithm.limit))
        return Plan(_script("meter"), ("meter",), params)
    limit = str(algorithm.limit)
    if isinstance(algorithm, FixedWindow):
        return Plan(_script("fixed"), ("fixed",), (_window_us(algorithm), limit))
    if isinstance(algorithm, SlidingWindowCounter):
        return Plan(_script("counter"), ("counter",), (_window_us(algorithm), limit))
    if isinstance(algorithm, SlidingWindowLog):
        return Plan(_script("log"), ("log", "sum"), (_window_us(algorithm), limit))
    raise ConfigError(
        "algorithm", algorithm, "has no Redis script (use one of the six built-in algorithms)"
    )


def endpoint(store: object) -> tuple[str, float, KeyLayout]:
    """The URL, timeout and key layout of a Redis store (or of a ``redis://`` URL)."""
    from buttress.stores import AsyncRedisStore, RedisStore

    if isinstance(store, str):
        checked = RedisStore(store)  # validates the URL (ConfigError naming it); opens nothing
        checked.close()
        store = checked
    if not isinstance(store, RedisStore | AsyncRedisStore):
        raise ConfigError(
            "store",
            type(store).__name__,
            "must be a RedisStore, an AsyncRedisStore or a redis:// URL (distributed rate"
            " limits run as Lua scripts on Redis)",
        )
    return store._url, store._timeout, store.layout


def lease_fraction(lease: object) -> float:
    if lease is False or lease is None:
        return 0.0
    if lease is True:
        return DEFAULT_FRACTION
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 0 < lease <= 1:
        raise ConfigError(
            "lease", lease, "must be True, False or a fraction of the limit in (0, 1]"
        )
    return float(lease)


def key_text(name: str, key: object) -> str:
    """The logical Redis key of limiter ``name``'s ``key``: ``ratelimit:<name>:<key>``."""
    if type(key) is str:
        return f"ratelimit:{name}:{key}"
    if isinstance(key, int) and not isinstance(key, bool):
        return f"ratelimit:{name}:{key}"
    raise ConfigError("key", type(key).__name__, "must be a str or an int with a shared store")


def key_pattern(layout: KeyLayout, name: str) -> str:
    """A ``SCAN MATCH`` pattern for every Redis key of limiter ``name``."""
    tagged = layout.key(f"ratelimit:{name}:")[:-1]  # '<prefix>{ratelimit:<name>:' (escaped)
    return re.sub(r"([*?\[\]\\])", r"\\\1", tagged) + "*"


def cost_arg(cost: float) -> str:
    """A cost as a script argument (Lua's ``tonumber`` reads back the same double)."""
    return str(cost) if type(cost) is int else repr(float(cost))


def decision(reply: Any, at: int, limit: int) -> Decision:
    """The ``Decision`` in a reply's four integers from index ``at``."""
    allowed, remaining, retry, reset = reply[at : at + WIDTH]
    return _new(
        Decision,
        (allowed == 1, remaining, _INF if retry < 0 else retry / 1e6, reset / 1e6, limit),
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease's answer: ``granted`` units (0: refused), the fields of the decision for the
    units the caller needed, and ``tag`` (what to send back with unused units)."""

    granted: float
    remaining: int
    retry_after: float
    reset_after: float
    tag: str


def grant(reply: Any) -> Grant:
    """The ``Grant`` of a ``lease`` reply."""
    granted, remaining, retry, reset, tag = reply
    return Grant(
        float(granted),
        int(remaining),
        _INF if retry < 0 else retry / 1e6,
        reset / 1e6,
        tag.decode() if isinstance(tag, bytes) else str(tag),
    )
