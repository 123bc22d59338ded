"""Fixtures of the Celery integration tests: a broker, a result backend and an app.

The broker is RabbitMQ at ``BUTTRESS_TEST_AMQP_URL`` (default
``amqp://guest:guest@127.0.0.1:5672//``; a ``redis://`` URL works too), and results go to Redis
at ``BUTTRESS_TEST_CELERY_BACKEND`` (default: the test Redis server's database 14, a database of
its own). Each run uses a task queue of its own, deleted afterwards, and deletes the result keys
it made. When one is unreachable the tests that need it are skipped with the reason, except
under ``CI=true``, where they fail (``tests.servers.unreachable``).
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery.app.base import Celery

from tests.servers import REDIS_URL, redis_url, unreachable

AMQP_URL = os.environ.get("BUTTRESS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _database_14(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/14", "", ""))


BACKEND_URL = os.environ.get("BUTTRESS_TEST_CELERY_BACKEND", _database_14(REDIS_URL))

SETEX_WARNING = "ignore:Call to deprecated setex:DeprecationWarning"
"""Celery's Redis result backend calls redis-py's deprecated ``setex`` when it stores a result."""


def broker_url() -> str:
    """The test broker URL, after checking that it accepts a connection (else skip or fail)."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    except Exception as exc:
        unreachable("the Celery broker", AMQP_URL, exc)
    return AMQP_URL


def backend_url() -> str:
    """The result backend URL (Redis), after checking that the server answers."""
    redis_url()  # skips or fails when Redis is down
    return BACKEND_URL


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """Poll ``condition`` every 20 ms until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {condition}")
        time.sleep(0.02)


def delete_results(app: Celery, ids: list[str]) -> None:
    """Delete the result keys of ``ids`` from the result backend."""
    for task_id in ids:
        app.AsyncResult(task_id).forget()


def close_backends(app: Celery) -> None:
    """Disconnect every Redis result backend ``app`` made (Celery makes one per thread), so
    that no socket is left for the garbage collector to find open."""
    from celery.backends.redis import RedisBackend

    gc.collect()  # results first: a result collected later would unsubscribe, reconnecting
    for backend in [o for o in gc.get_objects() if isinstance(o, RedisBackend)]:
        if backend.app is app:
            backend.result_consumer.stop()
            backend.client.connection_pool.disconnect()


@pytest.fixture
def eager_app() -> Iterator[Celery]:
    """A Celery app on the in-memory broker that runs tasks eagerly (no worker)."""
    app = Celery(f"test-{uuid.uuid4().hex[:8]}", broker="memory://", set_as_current=False)
    app.conf.update(task_always_eager=True, task_store_eager_result=False)
    yield app
    app.close()


def worker_app(name: str) -> Celery:
    """A Celery app on the test broker and backend, with a task queue of its own."""
    app = Celery(name, broker=broker_url(), backend=backend_url(), set_as_current=False)
    app.conf.update(
        task_default_queue=f"buttress-test-{uuid.uuid4().hex[:12]}",
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_heartbeat=1,  # the worker's loop wakes every half second: it stops at once
        result_expires=300,
        task_acks_late=True,
    )
    return app


def delete_queue(app: Celery) -> None:
    """Delete the app's task queue from the broker (on a Redis broker, also kombu's keys)."""
    queue = app.conf.task_default_queue
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)
    if AMQP_URL.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(AMQP_URL)
        try:
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            if not client.keys("_kombu.binding.*"):  # no other kombu user in this database
                client.delete("_kombu.binding_deadlines")
        finally:
            client.close()
