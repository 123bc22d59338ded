"""The fallback strategies: cached (stale on error), alternate service, canned responses."""

from __future__ import annotations

import pytest

from buttress import Registry
from buttress.degrade import AlternateFallback, CachedFallback, CannedResponses
from buttress.errors import ConfigError
from buttress.events import FallbackUsed
from buttress.telemetry import render
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


class Flaky:
    """A dependency that answers ``value`` or raises ``error``."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.value = "fresh"
        self.calls = 0

    def __call__(self, key: str) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return f"{self.value}:{key}"


async def test_cached_serves_the_last_good_result_on_error(
    mode: str, clock: ManualClock, recorded: RecordingListener
) -> None:
    """A failure within the stale limit answers the last good result for that key only."""
    cached = CachedFallback(stale_for=60, clock=clock, name="profile")
    dep = Flaky()
    assert await run(mode, cached, dep, "a") == "fresh:a"
    dep.error = ConnectionError("down")
    clock.advance(59)
    assert await run(mode, cached, dep, "a") == "fresh:a"
    with pytest.raises(ConnectionError):
        await run(mode, cached, dep, "b")  # never succeeded for b
    clock.advance(2)
    with pytest.raises(ConnectionError):
        await run(mode, cached, dep, "a")  # older than the stale limit
    assert cached.used == 1
    used = recorded.of(FallbackUsed)
    assert [(e.source, type(e.error)) for e in used] == [("profile", ConnectionError)]


async def test_cached_with_a_ttl_answers_without_calling(mode: str, clock: ManualClock) -> None:
    """Within ``ttl`` the cached result is served without a call; after it, the call runs."""
    cached = CachedFallback(ttl=10, stale_for=0, clock=clock)
    dep = Flaky()
    assert await run(mode, cached, dep, "k") == "fresh:k"
    dep.value = "newer"
    clock.advance(9)
    assert await run(mode, cached, dep, "k") == "fresh:k"
    assert (dep.calls, cached.hits) == (1, 1)
    clock.advance(1.5)
    assert await run(mode, cached, dep, "k") == "newer:k"
    dep.error = TimeoutError()
    clock.advance(10)  # ttl + stale_for = 10 s: the entry is exactly at its limit
    assert await run(mode, cached, dep, "k") == "newer:k"


def test_cached_is_bounded_and_keys_can_be_chosen(clock: ManualClock) -> None:
    """Beyond ``max_entries`` the least recently used entry goes; ``key`` picks the entry."""
    cached = CachedFallback(max_entries=2, key=lambda user, **_: user, clock=clock)
    for user in ("a", "b", "c"):
        cached.call(lambda user, page=1: f"{user}{page}", user, page=1)
    assert len(cached) == 2
    assert not cached.forget("a")
    assert cached.forget("b")

    def failing(user: str, page: int = 1) -> str:
        raise OSError("down")

    assert cached.call(failing, "c", page=9) == "c1"  # same key, other page


def test_cached_refuses_unhashable_arguments_without_a_key() -> None:
    """Unhashable arguments need ``key=``: a TypeError says so."""
    with pytest.raises(TypeError, match="give key="):
        CachedFallback().call(lambda items: 1, [1, 2])


async def test_only_matching_errors_fall_back(mode: str, clock: ManualClock) -> None:
    """An error outside ``on`` passes through untouched, even with a cached result."""
    cached = CachedFallback(on=ConnectionError, clock=clock)
    dep = Flaky()
    await run(mode, cached, dep, "a")
    dep.error = ValueError("bad request")
    with pytest.raises(ValueError, match="bad request"):
        await run(mode, cached, dep, "a")
    assert cached.used == 0


async def test_alternate_calls_the_other_service(mode: str) -> None:
    """On error the alternate answers with the same arguments; its own error propagates."""
    mirror_calls: list[str] = []

    def mirror(key: str) -> str:
        mirror_calls.append(key)
        return f"mirror:{key}"

    alternate = AlternateFallback(mirror, on=ConnectionError)
    dep = Flaky()
    dep.error = ConnectionError("primary down")
    assert await run(mode, alternate, dep, "x") == "mirror:x"
    assert (mirror_calls, alternate.used) == (["x"], 1)

    def broken_mirror(key: str) -> str:
        raise RuntimeError("mirror down too")

    with pytest.raises(RuntimeError, match="mirror down") as caught:
        AlternateFallback(broken_mirror).call(dep, "x")
    assert isinstance(caught.value.__context__, ConnectionError)


async def test_alternate_may_be_async_in_acall() -> None:
    """In acall an async alternate is awaited; in call it raises TypeError."""

    async def mirror(key: str) -> str:
        return f"async:{key}"

    async def down(key: str) -> str:
        raise ConnectionError

    alternate = AlternateFallback(mirror)
    assert await alternate.acall(down, "k") == "async:k"
    with pytest.raises(TypeError, match="async"):
        alternate.call(_down, "k")


def _down(key: str) -> str:
    raise ConnectionError(key)


async def test_canned_responses_by_intent(mode: str, recorded: RecordingListener) -> None:
    """``respond(intent)`` gives the canned answer; a failing call answers by its intent."""
    canned = CannedResponses(
        {"greeting": "Hello! Our assistant is resting; how can a human help?"},
        default="Sorry, answers are slow right now.",
        intent=lambda prompt: "greeting" if prompt.startswith("hi") else None,
        name="assistant",
    )
    assert canned.respond("greeting").startswith("Hello!")
    assert canned.respond("refund") == "Sorry, answers are slow right now."
    assert canned.intents() == ["greeting"]

    def model(prompt: str) -> str:
        raise TimeoutError("model overloaded")

    assert (await run(mode, canned, model, "hi there")).startswith("Hello!")
    assert await run(mode, canned, model, "where is my order") == (
        "Sorry, answers are slow right now."
    )
    assert canned.used == 4
    assert {e.source for e in recorded.of(FallbackUsed)} == {"assistant"}


def test_canned_without_default_lets_unknown_intents_fail() -> None:
    """No default: ``respond`` of an unknown intent raises LookupError, and a failing call
    with no known intent re-raises its own error."""
    canned = CannedResponses({"greeting": "hi"}, intent=lambda prompt: prompt)
    with pytest.raises(LookupError, match="refund"):
        canned.respond("refund")

    def model(prompt: str) -> str:
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        canned.call(model, "refund")
    assert canned.call(model, "greeting") == "hi"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: CachedFallback(ttl=-1), "ttl"),
        (lambda: CachedFallback(stale_for=-1), "stale_for"),
        (lambda: CachedFallback(max_entries=0), "max_entries"),
        (lambda: CachedFallback(key="user"), "key"),
        (lambda: CachedFallback(on="errors"), "on"),
        (lambda: CachedFallback(name=""), "name"),
        (lambda: AlternateFallback("mirror"), "alternate"),
        (lambda: CannedResponses({}), "responses"),
        (lambda: CannedResponses({1: "x"}), "responses"),
        (lambda: CannedResponses({"a": "x"}, intent="a"), "intent"),
    ],
)
def test_bad_options_are_refused(build, field: str) -> None:
    """Every strategy checks its options at construction: ConfigError naming the field."""
    with pytest.raises(ConfigError) as caught:
        build()
    assert caught.value.field == field


def test_cancellation_never_falls_back(clock: ManualClock) -> None:
    """KeyboardInterrupt is not an error to recover from: it propagates."""
    cached = CachedFallback(on=BaseException, clock=clock)
    cached.call(lambda: 1)

    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached.call(interrupted)


def test_strategies_register_as_fallbacks_and_are_counted_in_metrics() -> None:
    """``registry.add`` files them under ``fallback``: the metric counts their uses."""
    registry = Registry()
    canned = registry.add(CannedResponses({"greeting": "hi"}, name="assistant"))
    registry.add(CachedFallback(name="profile"))
    canned.respond("greeting")
    assert [f.name for f in registry.of_kind("fallback")] == ["assistant", "profile"]
    text = render(registry).decode()
    assert 'buttress_fallback_used_total{name="assistant"} 1.0' in text
    assert 'buttress_fallback_used_total{name="profile"} 0.0' in text
    assert registry.describe()["fallback"][0]["policy"] == "CannedResponses"
