"""Graceful degradation on the hot path: asking whether a feature is on, and calling through
the fallback strategies while nothing fails. Target: ``allows`` <= 1 µs, like a flag.

``degrade.allows``: ``manager.allows("recommendations")`` with a breaker rule and a load rule
(read at most every ``interval``), against an OpenFeature in-memory boolean flag, the nearest
thing applications use for "is this on?" (informational ratio).
``degrade.fallbacks``: one successful call through ``buttress.Fallback(value=...)``, a
``CachedFallback`` (which keeps the result), a feature gate (``@manager.fallback``) while the
feature is on, and the plain function. Target: the gate costs at most twice a ``Fallback``
(both wrap the call in one policy; the gate also reads the level).
"""

from __future__ import annotations

from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, sync_calls

__all__ = ["SCENARIOS"]

TARGET_NS = 1000.0


def _manager() -> Any:
    from buttress import Registry
    from buttress.degrade import BreakerRule, DegradationManager, LoadRule

    registry = Registry()
    registry.breaker("payments")
    return DegradationManager(
        [
            BreakerRule("payments", "moderate"),
            LoadRule("queue", signal=lambda: 0, threshold=1000, level="minor"),
        ],
        features={"recommendations": "moderate"},
        registry=registry,
    )


def _allows(ctx: Ctx) -> Prepared:
    manager = _manager()
    assert manager.allows("recommendations")

    def verify() -> None:
        manager.close()

    return Prepared(sync_calls(manager.allows, "recommendations"), verify)


def _openfeature(ctx: Ctx) -> Prepared:
    from openfeature import api
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

    provider = InMemoryProvider({"recommendations": InMemoryFlag("on", {"on": True, "off": False})})
    domain = f"bench-degrade-{id(provider)}"
    api.set_provider(provider, domain)
    get = api.get_client(domain).get_boolean_value
    assert get("recommendations", False)
    return Prepared(sync_calls(lambda name: get(name, False), "recommendations"))


def _answer(key: str) -> str:
    return key


def _plain(ctx: Ctx) -> Prepared:
    return Prepared(sync_calls(_answer, "k"))


def _fallback(ctx: Ctx) -> Prepared:
    from buttress import Fallback

    return Prepared(sync_calls(Fallback(value="stale")(_answer), "k"))


def _cached(ctx: Ctx) -> Prepared:
    from buttress.degrade import CachedFallback

    return Prepared(sync_calls(CachedFallback()(_answer), "k"))


def _gate(ctx: Ctx) -> Prepared:
    manager = _manager()
    gated = manager.fallback("recommendations", lambda key: "popular")(_answer)
    assert gated("k") == "k"
    return Prepared(sync_calls(gated, "k"), manager.close)


SCENARIOS = (
    TimingScenario(
        name="degrade.allows",
        title="is the feature on? (two rules, level normal)",
        contenders=(
            Contender("buttress", "buttress", 'manager.allows("recommendations")', _allows),
            Contender(
                "openfeature in-memory",
                "openfeature-sdk",
                'client.get_boolean_value("recommendations", False)',
                _openfeature,
            ),
        ),
        targets=(
            Target("buttress", None, TARGET_NS),
            Target("buttress", "openfeature in-memory", None),
        ),
    ),
    TimingScenario(
        name="degrade.fallbacks",
        title="a successful call through a fallback strategy",
        contenders=(
            Contender("cached", "buttress", "@CachedFallback() (keeps the result)", _cached),
            Contender(
                "feature gate", "buttress", '@manager.fallback("recommendations", ...)', _gate
            ),
            Contender("Fallback", "buttress", '@Fallback(value="stale")', _fallback),
            Contender("plain", "python", "the function itself", _plain),
        ),
        targets=(
            Target("feature gate", "Fallback", 2.0),
            Target("cached", "Fallback", None),
            Target("feature gate", "plain", None),
        ),
    ),
)
