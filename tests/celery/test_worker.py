"""The Celery integration with a real worker (threads pool, in this process) on the real broker:
maintenance tasks, a pipeline's retries, dead-lettering and replay through Celery."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery.app.base import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish

from buttress.celery import CeleryIntegration, ResilientTask, install
from buttress.dlq import DeadLetter, DeadLetterQueue, Status
from buttress.registry import Registry
from buttress.retry import Backoff
from tests.celery.conftest import (
    SETEX_WARNING,
    close_backends,
    delete_queue,
    delete_results,
    wait_for,
    worker_app,
)

pytestmark = pytest.mark.filterwarnings(SETEX_WARNING)

TIMEOUT = 10.0


@dataclass
class World:
    """The app with its worker running, its DLQ, and what the test tasks did."""

    app: Celery
    integration: CeleryIntegration
    dlq: DeadLetterQueue
    calls: Counter[str] = field(default_factory=Counter)
    failing: set[str] = field(default_factory=set)
    done: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, token: str) -> int:
        """Count one call for ``token``; the number of calls so far."""
        with self.lock:
            self.calls[token] += 1
            return self.calls[token]

    def letter(self, token: str) -> DeadLetter | None:
        """The dead letter whose first argument is ``token``, if any."""
        for letter in self.dlq.list(limit=1000).items:
            if letter.payload.get("args", [None])[0] == token:
                return letter
        return None


def _define_tasks(world: World) -> None:
    app = world.app

    @app.task(
        base=ResilientTask, bind=True, pipeline="celery-test", name="tests.flaky", shared=False
    )
    def flaky(self: ResilientTask, token: str, fails: int) -> str:
        attempt = world.count(token)
        world.done.setdefault(token, []).append(self.request.id)
        if attempt <= fails:
            raise ConnectionError(f"attempt {attempt} of {token} failed")
        return f"{token} ok after {attempt}"

    @app.task(base=ResilientTask, pipeline="celery-test", name="tests.broken", shared=False)
    def broken(token: str, *, amount: int) -> int:
        world.count(token)
        if token in world.failing:
            raise ConnectionError("downstream down")
        world.done[token] = amount * 2
        return amount * 2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A worker of an app with buttress installed (SQLite DLQ in a tmp dir), for the module."""
    app = worker_app("buttress-celery-test")
    tmp = tmp_path_factory.mktemp("celery")
    registry = Registry()
    retry = registry.retry(
        "celery-test", on=ConnectionError, attempts=3, backoff=Backoff.constant(0.01)
    )
    registry.pipeline("celery-test", retry, registry.breaker("celery-test", minimum_calls=100))
    dlq = DeadLetterQueue(f"sqlite:///{Path(tmp) / 'dlq.db'}")
    integration = install(
        app, registry=registry, dlq=dlq, state_dir=Path(tmp) / "state", replay_wait=TIMEOUT
    )
    world = World(app, integration, dlq)
    _define_tasks(world)
    published: list[str] = []

    def record(headers: dict[str, Any], **_: Any) -> None:
        published.append(headers["id"])

    before_task_publish.connect(record, weak=False)
    try:
        with start_worker(
            app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=TIMEOUT
        ):
            yield world
    finally:
        before_task_publish.disconnect(record)
        delete_results(app, published)
        delete_queue(app)
        close_backends(app)
        integration.close()
        dlq.close()
        app.close()


def test_a_maintenance_task_runs_on_the_worker_and_returns_its_result(world: World) -> None:
    """The breaker monitor, sent through the broker, reports the registry's breakers."""
    value = world.app.tasks["buttress.breaker-monitor"].delay().get(timeout=TIMEOUT)
    assert value["job"] == "breaker-monitor"
    assert value["outcome"] == "ok"
    assert value["result"]["breakers"] == {"celery-test": "closed"}


def test_a_transient_failure_is_retried_by_the_pipeline_and_succeeds(world: World) -> None:
    """Two connection errors, then success: the pipeline retried inside the worker, and each
    attempt ran with the task's request."""
    result = world.app.tasks["tests.flaky"].delay("flaky-1", 2)
    assert result.get(timeout=TIMEOUT) == "flaky-1 ok after 3"
    assert world.calls["flaky-1"] == 3
    assert world.done["flaky-1"] == [result.id] * 3  # each attempt saw the task's request
    assert world.letter("flaky-1") is None


def test_an_exhausted_task_is_dead_lettered_and_replayed_through_celery(world: World) -> None:
    """A task failing on every attempt ends in the DLQ with its arguments; once the cause is
    gone, the DLQ job (itself a task) re-submits it through the broker and it succeeds."""
    world.failing.add("broken-1")
    result = world.app.tasks["tests.broken"].delay("broken-1", amount=21)
    with pytest.raises(ConnectionError, match="downstream down"):
        result.get(timeout=TIMEOUT)
    letter = wait_for(lambda: world.letter("broken-1"))
    assert letter.queue == "tests.broken"
    assert letter.payload == {"args": ["broken-1"], "kwargs": {"amount": 21}}
    assert letter.headers == {"task": "tests.broken", "task_id": result.id}
    assert letter.status is Status.PENDING
    assert world.calls["broken-1"] == 3

    world.failing.discard("broken-1")
    world.dlq.retry(letter.id)  # an operator replays it now rather than at its next attempt
    job = world.app.tasks["buttress.dlq-process"].delay().get(timeout=3 * TIMEOUT)
    assert job["result"]["resolved"] == 1
    assert world.done["broken-1"] == 42
    assert world.calls["broken-1"] == 4
    replayed = world.dlq.get(letter.id)
    assert replayed is not None
    assert replayed.status is Status.RESOLVED
