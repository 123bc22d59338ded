"""Pipeline composition and the Registry."""

from __future__ import annotations

import pytest

from buttress import ConfigError
from buttress._policy import Policy
from buttress.breaker import CircuitBreaker
from buttress.pipeline import Pipeline
from buttress.registry import Registry
from tests.conftest import run


class Tag(Policy):
    """A policy that records when it is entered and left, to check ordering."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.options = None
        self.log = log

    def call(self, fn, /, *args, **kwargs):
        self.log.append(f"enter {self.name}")
        try:
            return fn(*args, **kwargs)
        finally:
            self.log.append(f"leave {self.name}")

    async def acall(self, fn, /, *args, **kwargs):
        self.log.append(f"enter {self.name}")
        try:
            return await fn(*args, **kwargs)
        finally:
            self.log.append(f"leave {self.name}")

    def describe(self):
        return {"policy": "Tag", "name": self.name, "options": {}}


async def test_runs_outer_to_inner(mode: str) -> None:
    """The first policy is outermost; arguments and keyword arguments reach the function."""
    log: list[str] = []
    pipeline = Pipeline(Tag("a", log), Tag("b", log), Tag("c", log))

    def add(x: int, y: int = 0) -> int:
        log.append("call")
        return x + y

    assert await run(mode, pipeline, add, 1) == 1
    assert pipeline.call(add, 2, y=3) == 5
    assert log[:7] == ["enter a", "enter b", "enter c", "call", "leave c", "leave b", "leave a"]


async def test_keyword_named_fn_reaches_function() -> None:
    """A keyword argument called `fn` is passed through, not taken by the policies."""
    log: list[str] = []
    pipeline = Pipeline(Tag("a", log), Tag("b", log))
    assert pipeline.call(lambda fn: fn * 2, fn=21) == 42


def test_nested_pipelines_flatten() -> None:
    """A pipeline inside a pipeline becomes part of one flat list."""
    log: list[str] = []
    a, b, c = Tag("a", log), Tag("b", log), Tag("c", log)
    outer = Pipeline(a, Pipeline(b, c, name="inner"), name="outer")
    assert outer.policies == (a, b, c)
    assert [p["name"] for p in outer.describe()["policies"]] == ["a", "b", "c"]


def test_rejects_non_policies() -> None:
    """Anything but a policy is a ConfigError naming its position; an empty pipeline too."""
    with pytest.raises(ConfigError, match=r"policies\[1\]"):
        Pipeline(CircuitBreaker("x"), "not a policy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one"):
        Pipeline()


async def test_pipeline_as_decorator() -> None:
    """A pipeline decorates sync and async functions."""
    log: list[str] = []
    pipeline = Pipeline(Tag("a", log))

    @pipeline
    def f() -> str:
        return "sync"

    @pipeline
    async def g() -> str:
        return "async"

    assert f() == "sync"
    assert await g() == "async"
    assert log == ["enter a", "leave a"] * 2


def test_registry_get_or_create_and_conflicts() -> None:
    """The same name gives the same breaker; other options for it are an error."""
    registry = Registry()
    b = registry.breaker("payments", failure_rate=0.25)
    assert registry.breaker("payments") is b
    assert registry.breaker("payments", failure_rate=0.25) is b
    with pytest.raises(ConfigError, match=r"breakers\.payments"):
        registry.breaker("payments", failure_rate=0.5)
    assert registry.get("payments") is b
    assert registry.breakers() == [b]


def test_registry_pipelines_by_name() -> None:
    """Pipelines can name registered policies; asking by name alone returns the pipeline."""
    registry = Registry()
    breaker = registry.breaker("db")
    pipeline = registry.pipeline("db-calls", "db")
    assert pipeline.policies == (breaker,)
    assert registry.pipeline("db-calls") is pipeline
    with pytest.raises(ConfigError):
        registry.pipeline("unknown")
    with pytest.raises(KeyError):
        registry.get("nothing")
    described = registry.describe()
    assert described["breaker"][0]["name"] == "db"
    assert described["pipeline"][0]["policies"][0]["name"] == "db"


def test_registry_uses_its_clock() -> None:
    """Policies made by a registry use the registry's clock."""
    from buttress.testing import ManualClock

    clock = ManualClock()
    registry = Registry(clock=clock)
    breaker = registry.breaker("db", consecutive_failures=1, open_for=10)
    breaker.trip()
    breaker.reset()
    with pytest.raises(ConnectionError):
        breaker.call(lambda: (_ for _ in ()).throw(ConnectionError()))
    clock.advance(10)
    assert breaker.state.value == "half_open"
