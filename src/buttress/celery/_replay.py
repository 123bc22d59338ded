"""``replay_handler``: a dead letter queue handler that sends a dead-lettered task to Celery
again and waits for its outcome, so that the dead letter stays the one record of the work.

The replayed message carries ``REPLAY_HEADER`` (the dead letter's id): if it fails, the task
does not dead-letter it a second time; the handler raises its error instead, and the DLQ
decides (a later attempt with backoff, or parked once the attempts ran out). A replay that
gives no result within ``wait`` raises ``TimeoutError`` (classified ``timeout``): the record
comes back later, and the task may then run twice, so replayed tasks should be idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import celery.states as states  # type: ignore[import-untyped]

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.celery._shared import REPLAY_HEADER
from buttress.dlq import DeadLetter
from buttress.errors import ConfigError

__all__ = ["replay_handler"]

FIRST_POLL = 0.01
LAST_POLL = 0.5
"""Seconds between looks at the result: doubling from ``FIRST_POLL`` up to ``LAST_POLL``."""


def replay_handler(
    app: Any, *, wait: opt.Duration = 30.0, clock: Clock | None = None
) -> Callable[[DeadLetter], Awaitable[None]]:
    """A handler for ``dlq.handler(queue)`` that re-submits the dead-lettered task on ``app``
    with its stored args and kwargs and waits up to ``wait`` seconds (default 30, below the
    DLQ's 60 s lease) for it to succeed. Needs a result backend that other processes can read
    (Redis, a database: not ``rpc://``). A payload without ``args``/``kwargs`` raises
    ``ValueError`` (classified permanent: parked)."""
    if not callable(getattr(app, "send_task", None)):
        raise ConfigError("app", app, "must be a Celery app")
    seconds = opt.duration("wait", wait)
    timer = clock if clock is not None else SYSTEM_CLOCK

    async def replay(letter: DeadLetter) -> None:
        name, args, kwargs = _call_of(letter)
        result = await asyncio.to_thread(_send, app, name, args, kwargs, letter.id)
        deadline = timer.monotonic() + seconds
        pause = FIRST_POLL
        while True:
            state = await asyncio.to_thread(lambda: result.state)
            if state in states.READY_STATES:
                break
            left = deadline - timer.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"replayed task {name} ({result.id}) gave no result within {seconds:g} s"
                )
            await timer.asleep(min(pause, left))
            pause = min(pause * 2, LAST_POLL)
        if state == states.SUCCESS:
            return
        error = await asyncio.to_thread(lambda: result.result)
        if isinstance(error, Exception):
            raise error
        raise RuntimeError(f"replayed task {name} ({result.id}) ended {state}")

    return replay


def _call_of(letter: DeadLetter) -> tuple[str, list[Any], dict[str, Any]]:
    """The task name, args and kwargs a dead letter holds."""
    payload = letter.payload
    args = payload.get("args", []) if isinstance(payload, dict) else None
    kwargs = payload.get("kwargs", {}) if isinstance(payload, dict) else None
    if not isinstance(args, list) or not isinstance(kwargs, dict) or "repr" in payload:
        raise ValueError(
            f"dead letter {letter.id} holds no task arguments ({{'args': [...], 'kwargs': "
            "{...}}): edit its payload to replay it"
        )
    return letter.headers.get("task") or letter.queue, args, kwargs


def _send(app: Any, name: str, args: list[Any], kwargs: dict[str, Any], letter: str) -> Any:
    """Send task ``name``; a task registered here goes through ``apply_async`` (so that
    ``task_always_eager`` and the task's routing options apply), any other by name."""
    headers = {REPLAY_HEADER: letter}
    task = app.tasks.get(name)
    if task is not None:
        return task.apply_async(args, kwargs, headers=headers)
    return app.send_task(name, args, kwargs, headers=headers)
