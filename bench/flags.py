"""Feature flags: the cost of one evaluation on the hot path. Target: <= 1 µs (1000 ns).

``flags.boolean``: a flag on for everyone, no context: ``flags.enabled("checkout")``.
``flags.rollout``: a 30 % rollout, bucketed by user, cycling through 1,000 users (their
bucket results are cached after the first round; "no cache" hashes every call).
``flags.targeted``: a flag with two rules (a user deny-list, then tenants) and a 0 % rollout,
cycling through 1,000 users over 10 tenants.

The peer is ``openfeature-sdk``'s ``InMemoryProvider`` through the OpenFeature client (what an
application using OpenFeature pays per evaluation), with a context evaluator doing the same
work for the rollout and targeting cases; "OpenFeature + buttress" is our provider behind the
same client (informational).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, perf_counter_ns

__all__ = ["SCENARIOS"]

USERS = [f"user-{i}" for i in range(1000)]
TENANTS = [f"tenant-{i % 10}" for i in range(1000)]
ALLOWED = frozenset({"tenant-1", "tenant-3", "tenant-7"})
DENIED = frozenset({"user-13", "user-666"})
TARGET_NS = 1000.0


def _store(**options: Any) -> Any:
    from buttress.degrade.flags import Flag, FlagRule, FlagStore

    flags = FlagStore("memory://", sync_interval=None, **options)
    flags.create(Flag("checkout", enabled=True))
    flags.create(Flag("ramp", enabled=True, rollout=30))
    flags.create(
        Flag(
            "beta",
            enabled=True,
            rollout=0,
            rules=[
                FlagRule("user", "in", sorted(DENIED), enabled=False),
                FlagRule("tenant", "in", sorted(ALLOWED)),
            ],
        )
    )
    return flags


def _sample_plain(call: Callable[[str], object], name: str) -> Callable[[int], int]:
    def sample(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            call(name)
        return perf_counter_ns() - t0

    return sample


def _buttress_boolean(ctx: Ctx) -> Prepared:
    flags = _store()
    assert flags.enabled("checkout")
    return Prepared(_sample_plain(flags.enabled, "checkout"))


def _buttress_rollout(cache_size: int) -> Callable[[Ctx], Prepared]:
    def setup(ctx: Ctx) -> Prepared:
        flags = _store(cache_size=cache_size)
        enabled = flags.enabled
        share = sum(enabled("ramp", user=u) for u in USERS)
        assert 200 < share < 400, share

        def sample(n: int) -> int:
            users = USERS
            t0 = perf_counter_ns()
            for i in range(n):
                enabled("ramp", user=users[i % 1000])
            return perf_counter_ns() - t0

        return Prepared(sample)

    return setup


def _buttress_targeted(ctx: Ctx) -> Prepared:
    flags = _store()
    enabled = flags.enabled
    assert enabled("beta", user="user-1", tenant="tenant-1")
    assert not enabled("beta", user="user-13", tenant="tenant-1")

    def sample(n: int) -> int:
        users, tenants = USERS, TENANTS
        t0 = perf_counter_ns()
        for i in range(n):
            j = i % 1000
            enabled("beta", user=users[j], tenant=tenants[j])
        return perf_counter_ns() - t0

    return Prepared(sample)


# -- the OpenFeature peer ------------------------------------------------------------------------


def _openfeature_client(provider: Any) -> Any:
    from openfeature import api

    domain = f"bench-{id(provider)}"
    api.set_provider(provider, domain)
    return api.get_client(domain)


def _in_memory() -> Any:
    from openfeature.flag_evaluation import FlagResolutionDetails, Reason
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

    from buttress.degrade.flags._hash import hash_text

    def rollout(flag: Any, context: Any) -> Any:
        user = context.targeting_key
        on = user is not None and hash_text(f"ramp:{user}", 0) % 100 + 1 <= 30
        return FlagResolutionDetails(on, reason=Reason.SPLIT, variant="on" if on else "off")

    def targeted(flag: Any, context: Any) -> Any:
        if context.targeting_key in DENIED:
            on = False
        else:
            on = context.attributes.get("tenant") in ALLOWED
        return FlagResolutionDetails(on, reason=Reason.TARGETING_MATCH)

    variants = {"on": True, "off": False}
    return InMemoryProvider(
        {
            "checkout": InMemoryFlag("on", variants),
            "ramp": InMemoryFlag("off", variants, context_evaluator=rollout),
            "beta": InMemoryFlag("off", variants, context_evaluator=targeted),
        }
    )


def _openfeature(kind: str, provider: Callable[[], Any]) -> Callable[[Ctx], Prepared]:
    def setup(ctx: Ctx) -> Prepared:
        from openfeature.evaluation_context import EvaluationContext

        client = _openfeature_client(provider())
        get = client.get_boolean_value
        if kind == "boolean":
            assert get("checkout", False)
            return Prepared(_sample_plain(lambda name: get(name, False), "checkout"))
        if kind == "rollout":
            contexts = [EvaluationContext(u) for u in USERS]
            name = "ramp"
        else:
            contexts = [
                EvaluationContext(u, {"tenant": t}) for u, t in zip(USERS, TENANTS, strict=True)
            ]
            name = "beta"
            assert get(name, False, contexts[1])

        def sample(n: int) -> int:
            t0 = perf_counter_ns()
            for i in range(n):
                get(name, False, contexts[i % 1000])
            return perf_counter_ns() - t0

        return Prepared(sample)

    return setup


def _buttress_provider() -> Any:
    from buttress.degrade.flags import ButtressProvider

    return ButtressProvider(_store())


def _scenario(name: str, title: str, ours: tuple[Contender, ...], kind: str) -> TimingScenario:
    return TimingScenario(
        name=f"flags.{name}",
        title=title,
        contenders=(
            *ours,
            Contender(
                "openfeature in-memory",
                "openfeature-sdk",
                "client.get_boolean_value(...)",
                _openfeature(kind, _in_memory),
            ),
            Contender(
                "openfeature + buttress",
                "buttress",
                "client.get_boolean_value(...) via ButtressProvider",
                _openfeature(kind, _buttress_provider),
            ),
        ),
        targets=(
            Target(ours[0].label, None, TARGET_NS),
            Target(ours[0].label, "openfeature in-memory", None),
        ),
    )


SCENARIOS = (
    _scenario(
        "boolean",
        "a flag on for everyone, no context",
        (Contender("buttress", "buttress", 'flags.enabled("checkout")', _buttress_boolean),),
        "boolean",
    ),
    _scenario(
        "rollout",
        "a 30 % rollout by user, 1,000 users in turn",
        (
            Contender(
                "buttress", "buttress", 'flags.enabled("ramp", user=u)', _buttress_rollout(4096)
            ),
            Contender(
                "buttress no cache",
                "buttress",
                "the same, every call hashed (cache_size=1)",
                _buttress_rollout(1),
            ),
        ),
        "rollout",
    ),
    _scenario(
        "targeted",
        "two rules (users denied, tenants allowed), 1,000 users over 10 tenants",
        (
            Contender(
                "buttress",
                "buttress",
                'flags.enabled("beta", user=u, tenant=t)',
                _buttress_targeted,
            ),
        ),
        "targeted",
    ),
)
