"""Shared fixtures: run a policy the sync way or the async way with one test body."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Examples are judged on what they prove, never on how long they took: a loaded CI machine must
# not fail a property test by its wall-clock deadline.
# Under CI=true the examples are derandomized (the same on every run): a landing must not depend
# on the luck of a seed; local runs keep drawing new examples and find what CI would not.
settings.register_profile(
    "buttress",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("buttress")


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test once through ``call`` and once through ``acall``."""
    return str(request.param)


async def run(mode: str, policy: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """Call the sync ``fn`` through ``policy.call``, or an async twin through ``policy.acall``."""
    if mode == "sync":
        return policy.call(fn, *args)

    async def afn(*a: Any) -> Any:
        return fn(*a)

    return await policy.acall(afn, *args)
