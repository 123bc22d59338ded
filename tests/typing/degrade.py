"""Checked by mypy, never run: buttress.degrade keeps its types through decorators."""

from __future__ import annotations

from typing import assert_type

from buttress.degrade import (
    Accepted,
    CachedFallback,
    DegradationLevel,
    DegradationManager,
    InMemoryOutbox,
    PartialFailure,
    PartialResult,
    QueueForLater,
    ReadOnlyGuard,
)

manager = DegradationManager(features={"recommendations": "moderate"})
later = QueueForLater(InMemoryOutbox())


@manager.fallback("recommendations", lambda user: ["popular"])
def recommend(user: str) -> list[str]:
    return [user]


@CachedFallback(stale_for=60)
async def profile(user_id: int) -> dict[str, str]:
    return {}


@later
def send(to: str) -> bool:
    return True


@later
async def asend(to: str) -> bool:
    return True


@ReadOnlyGuard(manager)
def save(row: dict[str, int]) -> int:
    return 1


assert_type(manager.level, DegradationLevel)
assert_type(manager.allows("recommendations"), bool)
assert_type(recommend("ann"), list[str])
assert_type(send("a@b"), bool | Accepted)
assert_type(save({}), int)
assert_type(PartialFailure(0.5).run({"a": lambda: 1}), PartialResult)


async def uses_async() -> None:
    assert_type(await profile(1), dict[str, str])
    assert_type(await asend("a@b"), bool | Accepted)
