"""Decorator wrappers compiled with the decorated function's own parameters."""

from __future__ import annotations

import inspect
import traceback
from typing import Any

import pytest

from buttress import CircuitBreaker, Retry
from buttress._wrap import GENERIC, signature_of
from buttress.testing import ManualClock


def pos_only(a: int, b: int = 2, /) -> tuple[Any, ...]:
    return (a, b)


def mixed(a: int, /, b: int, c: list[int] | None = None, *, d: int, e: int = 5) -> tuple[Any, ...]:
    return (a, b, c, d, e)


def star(a: int, *rest: int, k: int = 0, **more: int) -> tuple[Any, ...]:
    return (a, rest, k, more)


def kw_only(*, x: int, y: int = 1) -> tuple[Any, ...]:
    return (x, y)


CASES: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    (pos_only, (1,), {}),
    (pos_only, (1, 3), {}),
    (mixed, (1, 2), {"d": 4}),
    (mixed, (1,), {"b": 2, "c": [3], "d": 4, "e": 6}),
    (star, (1, 2, 3), {"k": 4, "z": 5}),
    (star, (1,), {}),
    (kw_only, (), {"x": 1}),
]


@pytest.mark.parametrize("policy", ["breaker", "retry"])
@pytest.mark.parametrize(("fn", "args", "kwargs"), CASES)
def test_wrapper_passes_every_argument_as_the_function_gets_it(policy, fn, args, kwargs) -> None:
    """Positional-only, defaults, keyword-only, *args and **kwargs arrive unchanged."""
    assert signature_of(fn) is not None  # the compiled wrapper, not the generic one
    wrapped = _decorate(policy, fn)
    assert wrapped(*args, **kwargs) == fn(*args, **kwargs)
    assert inspect.signature(wrapped) == inspect.signature(fn)
    assert wrapped.__name__ == fn.__name__


@pytest.mark.parametrize("policy", ["breaker", "retry"])
def test_wrapper_rejects_bad_calls_like_the_function(policy) -> None:
    """A missing or unexpected argument is a TypeError from the wrapper itself."""
    wrapped = _decorate(policy, mixed)
    with pytest.raises(TypeError):
        wrapped(1)
    with pytest.raises(TypeError):
        wrapped(1, 2, d=4, nope=1)


def test_default_objects_are_the_functions_own() -> None:
    """A mutable default is passed through as the very same object."""
    marker: list[int] = []

    def f(x: list[int] = marker) -> list[int]:
        return x

    assert Retry(on=ValueError, attempts=2)(f)() is marker


def test_parameters_named_like_the_template_fall_back_to_generic() -> None:
    """A parameter named with the template's prefix gets the generic wrapper, which still works."""

    def f(_bt_fn: int, x: int = 1) -> int:
        return _bt_fn + x

    assert signature_of(f) is None
    assert CircuitBreaker(name="b")(f)(2, x=3) == 5
    assert GENERIC.params == "*args, **kwargs"


async def test_async_methods_are_wrapped_with_self() -> None:
    """Decorated methods receive self; retries re-call with the same arguments."""
    calls: list[int] = []

    class Client:
        @Retry(on=ValueError, attempts=3, clock=ManualClock())
        async def get(self, n: int, *, scale: int = 1) -> int:
            calls.append(n)
            if len(calls) < 3:
                raise ValueError("flaky")
            return n * scale

    assert await Client().get(2, scale=5) == 10
    assert calls == [2, 2, 2]


def test_tracebacks_show_the_wrapper_source() -> None:
    """The compiled wrapper's lines appear in tracebacks (registered with linecache)."""
    breaker = CircuitBreaker(name="tb")

    @breaker
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError) as info:
        boom()
    text = "".join(traceback.format_exception(info.value))
    assert "buttress breaker wrapper" in text
    assert "_bt_result = _bt_fn()" in text


def test_decorating_in_a_loop_reuses_the_compiled_code() -> None:
    """Wrappers of functions with the same parameters share one code object."""
    breaker = CircuitBreaker(name="loop")
    wrappers = [breaker(lambda x, i=i: x + i) for i in range(50)]
    assert len({w.__code__ for w in wrappers}) == 1
    assert [w(1) for w in wrappers[:3]] == [1, 2, 3]


def _decorate(policy: str, fn: Any) -> Any:
    if policy == "breaker":
        return CircuitBreaker(name="wrap")(fn)
    return Retry(on=ValueError, attempts=2)(fn)
