"""``ResilientTask``: a Celery task whose body runs through a buttress pipeline, and whose
failures (the pipeline gave up) are kept in the dead letter queue to be replayed later.

Retrying is the pipeline's job, in the worker: Celery's ``autoretry_for`` is refused on these
tasks, so that an attempt is never retried twice over (see docs/celery.md). Celery's own control
exceptions (``self.retry()``, ``Ignore``, ``Reject``) pass through the pipeline as if the body
had succeeded (no retry, no breaker failure) and are raised again after it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from celery.app.task import Task  # type: ignore[import-untyped]
from celery.exceptions import (  # type: ignore[import-untyped]
    Ignore,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
)

from buttress._policy import Policy
from buttress.celery._shared import installed, open_dlq, replay_of
from buttress.dlq import DeadLetterQueue
from buttress.errors import ConfigError, DeadLetterError
from buttress.pipeline import Pipeline
from buttress.registry import Registry

__all__ = ["ResilientTask", "dead_letter"]

logger = logging.getLogger("buttress")

CONTROL: tuple[type[BaseException], ...] = (Retry, Ignore, Reject)
"""Celery's control-flow exceptions: not failures, never retried by the pipeline."""
REPR_LIMIT = 2000


class _Control:
    """A Celery control exception carried through the pipeline as a result."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ResilientTask(Task):  # type: ignore[misc]
    """A Celery task base that runs the body through a buttress policy and dead-letters
    failures: ``@app.task(base=ResilientTask, pipeline="payments")``.

    Options (task options or class attributes): ``pipeline``, a policy or the name of one in
    ``registry`` (default: the registry given to ``buttress.celery.install``), or ``policies``,
    a sequence run as a ``Pipeline``; neither runs the bare body. ``dead_letter``: a
    ``DeadLetterQueue``, its URL (opened once per worker process), ``False`` for none, or None
    (default) for the installed one. ``dead_letter_queue``: the queue name (default: the task
    name). The payload is ``{"args": [...], "kwargs": {...}}``; headers name the task and id.
    """

    pipeline: ClassVar[str | Policy | None] = None
    policies: ClassVar[Sequence[Policy]] = ()
    registry: ClassVar[Registry | None] = None
    dead_letter: ClassVar[DeadLetterQueue | str | Literal[False] | None] = None
    dead_letter_queue: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_options(cls)

    def resilience(self) -> Policy | None:
        """The policy the body runs under (resolved once), or None for the bare body."""
        cached: tuple[Policy | None] | None = self.__dict__.get("_buttress_policy")
        if cached is None:
            cached = (self._resolve(),)
            self.__dict__["_buttress_policy"] = cached
        return cached[0]

    def _resolve(self) -> Policy | None:
        spec, policies = type(self).pipeline, type(self).policies
        if isinstance(spec, Policy):
            return spec
        if policies:
            return Pipeline(*policies, name=self.name)
        if spec is None:
            return None
        registry = type(self).registry
        if registry is None:
            integration = installed(self.app)
            registry = None if integration is None else integration.registry
        if registry is None:
            raise ConfigError(
                "registry", None, f"task {self.name}: pipeline {spec!r} needs a registry"
            )
        for kind in ("pipeline", None):
            try:
                found = registry.get(spec, kind)
            except KeyError:
                continue
            if isinstance(found, Policy):
                return found
        raise ConfigError("pipeline", spec, f"is not a policy in the registry (task {self.name})")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        policy = self.resilience()
        if policy is None:
            return super().__call__(*args, **kwargs)
        result = policy.call(self._attempt, args, kwargs)
        if isinstance(result, _Control):
            raise result.error
        return result

    def _attempt(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except CONTROL as exc:
            return _Control(exc)

    def dead_letters(self) -> DeadLetterQueue | None:
        """The dead letter queue this task's failures go to in this process, or None."""
        target = type(self).dead_letter
        if target is False:
            return None
        if isinstance(target, DeadLetterQueue):
            return target
        if isinstance(target, str):
            return open_dlq(target)
        integration = installed(self.app)
        return None if integration is None else integration.dead_letters()

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        einfo: Any,
    ) -> None:
        """Dead-letter the failed task (unless it is a replay, whose handler decides)."""
        super().on_failure(exc, task_id, args, kwargs, einfo)
        if replay_of(self.request) is not None:
            return
        dlq = self.dead_letters()
        if dlq is not None:
            queue = type(self).dead_letter_queue or self.name
            dead_letter(dlq, queue, self.name, task_id, exc, args, kwargs)


def dead_letter(
    dlq: DeadLetterQueue,
    queue: str,
    task: str,
    task_id: str,
    error: BaseException,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
) -> str | None:
    """Keep a failed task in ``dlq``; the record's id, or None if it could not be written
    (logged: a failure handler must not raise). Idempotent per task id."""
    headers = {"task": task, "task_id": str(task_id)}
    key = f"celery:{task_id}"
    kind = "timeout" if isinstance(error, SoftTimeLimitExceeded | TimeLimitExceeded) else None
    payload = {"args": list(args or ()), "kwargs": dict(kwargs or {})}
    try:
        try:
            id = dlq.add(
                payload, error=error, queue=queue, key=key, headers=headers, classification=kind
            )
        except DeadLetterError:  # arguments that are not JSON: kept for people, not replayable
            text = _repr(args, kwargs)
            id = dlq.add(
                {"repr": text},
                error=error,
                queue=queue,
                key=key,
                headers=headers,
                classification="poison",
            )
    except Exception:
        logger.exception("task %s[%s] failed and could not be dead-lettered", task, task_id)
        return None
    logger.warning(
        "task %s[%s] failed (%s): dead-lettered as %s in %r",
        task,
        task_id,
        type(error).__name__,
        id,
        dlq.name,
    )
    return id


def _repr(args: object, kwargs: object) -> str:
    try:
        return repr((args, kwargs))[:REPR_LIMIT]
    except Exception:
        return "<arguments with an unprintable repr>"


def _check_options(cls: type[ResilientTask]) -> None:
    """Refuse bad task options when the task class is made (``@app.task(base=...)``)."""
    if getattr(cls, "autoretry_for", ()):
        raise ConfigError(
            "autoretry_for",
            cls.autoretry_for,
            "is not used with ResilientTask: retries belong to its buttress pipeline",
        )
    spec = cls.pipeline
    if spec is not None and not isinstance(spec, Policy) and not (isinstance(spec, str) and spec):
        raise ConfigError("pipeline", spec, "must be a policy, a policy's name or None")
    policies: object = cls.policies
    if isinstance(policies, str | bytes) or not isinstance(policies, Sequence):
        raise ConfigError("policies", policies, "must be a sequence of policies")
    for index, policy in enumerate(policies):
        if not isinstance(policy, Policy):
            raise ConfigError(f"policies[{index}]", policy, "must be a buttress policy")
    if spec is not None and policies:
        raise ConfigError("policies", policies, "give pipeline= or policies=, not both")
    if cls.registry is not None and not isinstance(cls.registry, Registry):
        raise ConfigError("registry", cls.registry, "must be a buttress Registry or None")
    target = cls.dead_letter
    if not (target is None or target is False or isinstance(target, DeadLetterQueue | str)):
        raise ConfigError("dead_letter", target, "must be a DeadLetterQueue, a URL, False or None")
    queue = cls.dead_letter_queue
    if queue is not None and not (isinstance(queue, str) and 0 < len(queue) <= 200):
        raise ConfigError("dead_letter_queue", queue, "must be a non-empty string (<= 200)")
