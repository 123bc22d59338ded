"""``Registry``: named policies and pipelines, got or created by name.

The ops server, the CLI and configuration see a service's policies through its registry. Asking
twice for the same name returns the same object, so modules share a breaker by naming it; asking
again with different options is a mistake and raises ``ConfigError``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from buttress._clock import Clock
from buttress._policy import Policy
from buttress.breaker import CircuitBreaker
from buttress.errors import ConfigError
from buttress.pipeline import Pipeline

if TYPE_CHECKING:
    from buttress.bulkhead import Bulkhead
    from buttress.http import ClientResilience
    from buttress.ratelimit import Algorithm, RateLimiter
    from buttress.retry import Retry, RetryBudget
    from buttress.timeout import Timeout

__all__ = ["Registry"]

ObjT = TypeVar("ObjT")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


class Registry:
    """Named breakers, retries, timeouts, bulkheads, retry budgets, rate limiters and pipelines
    (and, added with ``add``, load shedders and work queues: kinds ``concurrency``,
    ``throttle``, ``queue``).

    Policies it creates use its ``clock`` unless told otherwise. Names are per kind: a breaker and
    a retry may both be called ``"payments"``.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._items: dict[str, dict[str, Any]] = {}
        self._keyed: set[str] = set()  # rate limiters used per key (a client), not as one quota

    def _get_or_create(
        self, kind: str, name: str, options: dict[str, Any], make: Callable[[], ObjT]
    ) -> ObjT:
        with self._lock:
            bucket = self._items.setdefault(kind, {})
            existing = bucket.get(name)
            if existing is None:
                bucket[name] = created = make()
                return created
            if options:
                candidate = make()
                if getattr(candidate, "options", None) != getattr(existing, "options", None):
                    raise ConfigError(
                        f"{kind}s.{name}", options, "is already registered with other options"
                    )
            return existing  # type: ignore[no-any-return]

    def _with_clock(self, options: dict[str, Any]) -> dict[str, Any]:
        if self.clock is not None and "clock" not in options:
            return {**options, "clock": self.clock}
        return options

    def breaker(self, name: str, **options: Any) -> CircuitBreaker:
        """The breaker called ``name``, created with ``options`` the first time."""
        kwargs = self._with_clock(options)
        return self._get_or_create("breaker", name, options, lambda: CircuitBreaker(name, **kwargs))

    def retry(self, name: str, **options: Any) -> Retry:
        """The retry policy called ``name``; ``budget="x"`` names a budget of this registry."""
        from buttress.retry import Retry

        kwargs = self._with_clock(options)
        if isinstance(kwargs.get("budget"), str):
            kwargs["budget"] = self.budget(kwargs["budget"])
        return self._get_or_create("retry", name, options, lambda: Retry(name=name, **kwargs))

    def budget(self, name: str, **options: Any) -> RetryBudget:
        """The retry budget called ``name``, shared by every retry that names it."""
        from buttress.retry import RetryBudget

        kwargs = self._with_clock(options)
        return self._get_or_create(
            "budget", name, options, lambda: RetryBudget(name=name, **kwargs)
        )

    def timeout(self, name: str, seconds: float, **options: Any) -> Timeout:
        """The timeout policy called ``name``."""
        from buttress.timeout import Timeout

        kwargs = self._with_clock(options)
        return self._get_or_create(
            "timeout",
            name,
            {"seconds": seconds, **options},
            lambda: Timeout(seconds, name=name, **kwargs),
        )

    def bulkhead(self, name: str, max_concurrent: int, **options: Any) -> Bulkhead:
        """The bulkhead called ``name``."""
        from buttress.bulkhead import Bulkhead

        kwargs = self._with_clock(options)
        return self._get_or_create(
            "bulkhead",
            name,
            {"max_concurrent": max_concurrent, **options},
            lambda: Bulkhead(max_concurrent, name=name, **kwargs),
        )

    def limiter(
        self, name: str, algorithm: Algorithm | None = None, *, keyed: bool = False, **options: Any
    ) -> RateLimiter:
        """The rate limiter called ``name``, created with ``algorithm`` and ``options`` the first
        time (without ``algorithm``: the registered one). ``keyed``: used per key (a client, a
        tenant) rather than as one quota, which the admin API and ``buttress limits`` show."""
        from buttress.ratelimit import RateLimiter

        if algorithm is None:
            found: RateLimiter = self._get_or_create(
                "limiter", name, {}, lambda: _missing("limiter", name, "give its algorithm")
            )
            return found
        kwargs = self._with_clock(options)
        created: RateLimiter = self._get_or_create(
            "limiter",
            name,
            {"algorithm": algorithm, **options},
            lambda: RateLimiter(algorithm, name=name, **kwargs),
        )
        if keyed:
            with self._lock:
                self._keyed.add(name)
        return created

    def is_keyed(self, name: str) -> bool:
        """Whether the rate limiter called ``name`` was registered as ``keyed``."""
        with self._lock:
            return name in self._keyed

    def limiters(self) -> list[RateLimiter]:
        """Every registered rate limiter (kind ``limiter``), sorted by name."""
        return self.of_kind("limiter")

    def pipeline(self, name: str, *policies: Policy | str) -> Pipeline:
        """The pipeline called ``name``; a string in ``policies`` names a registered policy."""
        with self._lock:
            existing = self._items.get("pipeline", {}).get(name)
            if existing is not None and not policies:
                return existing  # type: ignore[no-any-return]
            resolved = tuple(self.get(p) if isinstance(p, str) else p for p in policies)
            if existing is not None:
                if existing.policies != Pipeline(*resolved).policies:
                    raise ConfigError(
                        f"pipelines.{name}", policies, "is already registered with other policies"
                    )
                return existing  # type: ignore[no-any-return]
            if not resolved:
                raise ConfigError(f"pipelines.{name}", policies, "is not registered")
            created = Pipeline(*resolved, name=name)
            self._items.setdefault("pipeline", {})[name] = created
            return created

    def add(self, policy: NamedT) -> NamedT:
        """Register a policy (or a ``WorkQueue``) built elsewhere under its name; returns it."""
        kind = _kind(policy)
        with self._lock:
            bucket = self._items.setdefault(kind, {})
            if bucket.get(policy.name, policy) is not policy:
                raise ConfigError(f"{kind}s.{policy.name}", policy, "is already registered")
            bucket[policy.name] = policy
        return policy

    def attach(self, kind: str, item: ObjT, name: str) -> ObjT:
        """Register an object that is not a policy (a degradation manager, a feature's fallback
        counter) as ``name`` of ``kind``; returns it. ConfigError if another holds the name."""
        with self._lock:
            bucket = self._items.setdefault(kind, {})
            if bucket.get(name, item) is not item:
                raise ConfigError(f"{kind}s.{name}", name, "is already registered")
            bucket[name] = item
        return item

    def get(self, name: str, kind: str | None = None) -> Any:
        """The policy called ``name`` (of ``kind`` if given); KeyError if none, or ambiguous."""
        with self._lock:
            kinds = [kind] if kind is not None else list(self._items)
            found = [self._items[k][name] for k in kinds if name in self._items.get(k, {})]
        if len(found) != 1:
            what = "no policy" if not found else "several policies"
            raise KeyError(f"{what} named {name!r}" + (f" of kind {kind!r}" if kind else ""))
        return found[0]

    def of_kind(self, kind: str) -> list[Any]:
        """Every registered object of one kind, sorted by name."""
        with self._lock:
            bucket = self._items.get(kind, {})
            return [bucket[name] for name in sorted(bucket)]

    def breakers(self) -> list[CircuitBreaker]:
        """Every registered circuit breaker, sorted by name."""
        return self.of_kind("breaker")

    def pipelines(self) -> list[Pipeline]:
        """Every registered pipeline, sorted by name."""
        return self.of_kind("pipeline")

    def http_clients(self) -> list[ClientResilience]:
        """Every registered HTTP client (``buttress.http``, kind ``http_client``), by name."""
        return self.of_kind("http_client")

    def describe(self) -> dict[str, list[dict[str, Any]]]:
        """Every registered policy described, grouped by kind."""
        with self._lock:
            kinds = sorted(self._items)
        return {
            kind: [item.describe() for item in self.of_kind(kind) if hasattr(item, "describe")]
            for kind in kinds
        }


def _missing(kind: str, name: str, hint: str) -> Any:
    raise ConfigError(f"{kind}s.{name}", None, f"is not registered ({hint})")


def _kind(policy: object) -> str:
    declared = getattr(type(policy), "registry_kind", None)  # e.g. the fallback strategies
    if isinstance(declared, str):
        return declared
    names = {
        "CircuitBreaker": "breaker",
        "RetryBudget": "budget",
        "RateLimiter": "limiter",
        "ConcurrencyLimiter": "concurrency",
        "AdaptiveConcurrency": "concurrency",
        "AdaptiveThrottle": "throttle",
        "WorkQueue": "queue",
    }
    cls = type(policy).__name__
    return names.get(cls, cls.lower())
