"""Shared fixtures: run a policy the sync way or the async way with one test body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Examples are judged on what they prove, never on how long they took: a loaded CI machine must
# not fail a property test by its wall-clock deadline.
settings.register_profile("buttress", deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
