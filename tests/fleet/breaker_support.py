"""What the shared-breaker tests call through their breakers, and how they wait for news."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from buttress.breaker import CircuitBreaker
from buttress.errors import CircuitOpenError

__all__ = ["Dead", "drive", "eventually", "fail", "ok"]


class Dead(Exception):
    """The dependency is down."""


def fail() -> None:
    raise Dead


def ok() -> int:
    return 1


def drive(breaker: CircuitBreaker, fn: Callable[[], object], times: int) -> int:
    """Call ``fn`` through ``breaker`` ``times`` times, swallowing ``Dead`` and rejections;
    return how many calls ran."""
    ran = 0
    for _ in range(times):
        try:
            breaker.call(fn)
            ran += 1
        except CircuitOpenError:
            pass
        except Dead:
            ran += 1
    return ran


def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Poll ``check`` in 10 ms steps; return the seconds it took, or fail after ``within``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            pytest.fail(f"not true within {within}s")
        time.sleep(0.01)
    return time.monotonic() - start
