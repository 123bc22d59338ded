"""``DeadLetterQueue``: add failed work, register handlers, process, inspect and intervene.

The queue validates and decides (payload checks, classification, the first attempt's time);
the backend stores. Every manual action is one method returning plain data, so the admin API,
the dashboard and the CLI are thin wrappers.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.dlq._alerts import Alerts, AlertState, DeadLetterAlert
from buttress.dlq._backend import Backend, NewBatch
from buttress.dlq._classify import Classifier, Rule
from buttress.dlq._counters import Counters
from buttress.dlq._intake import build_batch, check_key, encode_many, open_backend, queue_name
from buttress.dlq._records import (
    Classification,
    DeadLetter,
    ErrorInfo,
    Filter,
    Page,
    Stats,
    encode_payload,
)
from buttress.dlq._worker import Handler, ProcessReport, Worker
from buttress.errors import ConfigError, DeadLetterError
from buttress.events import emit
from buttress.retry import Backoff

__all__ = ["DEFAULT_BACKOFF", "DeadLetterQueue"]

logger = logging.getLogger("buttress")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BACKOFF = Backoff.exponential(base=60.0, factor=2.0, cap=3600.0, jitter="equal")
"""Between attempts: 30-60 s, 1-2 min, 2-4 min, ... up to 30-60 min."""


class DeadLetterQueue:
    """Failed work kept durably, classified, retried on a schedule and shown to people.

    ``DeadLetterQueue(backend, *, name="dlq", rules=(), classifier=None, backoff=DEFAULT_BACKOFF,
    max_attempts=5, lease=60.0, batch=100, retention=7 days, rate_window=300.0, alerts=None,
    clock=None, rng=None)``. ``backend`` is a URL (``sqlite:///dlq.db``, ``redis://...``) or a
    ``Backend``. ``rules`` go before the default classification rules (or pass a whole
    ``classifier``). ``backoff`` spaces the attempts (the first one comes after its first
    delay); ``max_attempts`` is the default per message; ``lease`` is how long a worker holds a
    batch before it comes back; ``retention`` is how long ``cleanup()`` keeps resolved and
    discarded records; ``rate_window`` is the span of ``stats().arrival_rate``.
    """

    def __init__(
        self,
        backend: Backend | str,
        *,
        name: str = "dlq",
        rules: Sequence[Rule] = (),
        classifier: Classifier | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_attempts: int = 5,
        lease: opt.Duration = 60.0,
        batch: int = 100,
        retention: opt.Duration = timedelta(days=7),
        rate_window: opt.Duration = 300.0,
        alerts: Alerts | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = queue_name(name, "name")
        if classifier is not None and rules:
            raise ConfigError("rules", rules, "give rules= or classifier=, not both")
        self.classifier = classifier if classifier is not None else Classifier(rules)
        if not isinstance(backoff, Backoff):
            raise ConfigError("backoff", backoff, "must be a Backoff")
        self.backoff = backoff
        self.max_attempts = opt.integer("max_attempts", max_attempts)
        self.lease = opt.duration("lease", lease)
        self.batch = opt.integer("batch", batch)
        self.retention = opt.duration("retention", retention)
        self.rate_window = opt.duration("rate_window", rate_window)
        if alerts is not None and not isinstance(alerts, Alerts):
            raise ConfigError("alerts", alerts, "must be an Alerts or None")
        self.alerts = alerts
        self._alert_state = AlertState(alerts) if alerts is not None else None
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "must be a Clock")
        self.clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.rng = rng if rng is not None else random.Random()
        if isinstance(backend, str):
            backend = open_backend(backend, name=self.name)
        elif not isinstance(backend, Backend):
            raise ConfigError("backend", backend, "must be a URL or a Backend")
        self.backend: Backend = backend
        self.counters = Counters()
        self._handlers: dict[str, Handler] = {}

    # -- adding --------------------------------------------------------------------------------

    def _batch(
        self,
        payloads: Sequence[str],
        keys: Sequence[str | None] | None,
        error: BaseException | ErrorInfo | None,
        queue: str,
        max_attempts: int | None,
        headers: Mapping[str, str] | None,
        classification: Classification | str | None,
    ) -> NewBatch:
        return build_batch(
            payloads,
            keys,
            error,
            queue,
            self.max_attempts if max_attempts is None else max_attempts,
            headers,
            classification,
            classifier=self.classifier,
            backoff=self.backoff,
            rng=self.rng,
            clock=self.clock,
        )

    def add(
        self,
        payload: Any,
        *,
        error: BaseException | ErrorInfo | None = None,
        queue: str = "messages",
        max_attempts: int | None = None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        classification: Classification | str | None = None,
    ) -> str:
        """Keep ``payload`` (JSON) that failed with ``error``; its id, once it is durable.

        A ``key`` already stored returns that record's id and adds nothing. A payload that is
        not JSON raises ``DeadLetterError`` naming it, and nothing is written. A permanent or
        poison error parks the record at once; otherwise its first attempt is due after the
        first backoff delay (or the error's ``retry_after``, if later).
        """
        text = encode_payload(payload)
        keys = None if key is None else [check_key(key, "key")]
        batch = self._batch([text], keys, error, queue, max_attempts, headers, classification)
        (id,) = self.backend.insert(batch)
        self.counters.count_added(batch.queue, batch.classification.value, 1)
        return id

    async def aadd(
        self,
        payload: Any,
        *,
        error: BaseException | ErrorInfo | None = None,
        queue: str = "messages",
        max_attempts: int | None = None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        classification: Classification | str | None = None,
    ) -> str:
        """``add`` for asyncio: the event loop is never blocked while the record is written."""
        text = encode_payload(payload)
        keys = None if key is None else [check_key(key, "key")]
        batch = self._batch([text], keys, error, queue, max_attempts, headers, classification)
        (id,) = await self.backend.ainsert(batch)
        self.counters.count_added(batch.queue, batch.classification.value, 1)
        return id

    def add_many(
        self,
        payloads: Iterable[Any],
        *,
        error: BaseException | ErrorInfo | None = None,
        queue: str = "messages",
        max_attempts: int | None = None,
        keys: Sequence[str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        classification: Classification | str | None = None,
    ) -> builtins.list[str]:
        """Keep many payloads that failed with the same ``error``, all or none, in one write;
        their ids in order. ``keys`` gives each an idempotency key (or None)."""
        texts, checked = encode_many(payloads, keys)
        if not texts:
            return []
        batch = self._batch(texts, checked, error, queue, max_attempts, headers, classification)
        ids = self.backend.insert(batch)
        self.counters.count_added(batch.queue, batch.classification.value, len(ids))
        return ids

    async def aadd_many(
        self,
        payloads: Iterable[Any],
        *,
        error: BaseException | ErrorInfo | None = None,
        queue: str = "messages",
        max_attempts: int | None = None,
        keys: Sequence[str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        classification: Classification | str | None = None,
    ) -> builtins.list[str]:
        """``add_many`` for asyncio."""
        texts, checked = encode_many(payloads, keys)
        if not texts:
            return []
        batch = self._batch(texts, checked, error, queue, max_attempts, headers, classification)
        ids = await self.backend.ainsert(batch)
        self.counters.count_added(batch.queue, batch.classification.value, len(ids))
        return ids

    # -- handlers and processing ---------------------------------------------------------------

    def handler(self, queue: str) -> Callable[[F], F]:
        """Register the decorated function (sync or async, taking a ``DeadLetter``) as the one
        that re-processes ``queue``'s messages; returning normally resolves the message."""
        name = queue_name(queue)

        def register(fn: F) -> F:
            if not callable(fn):
                raise ConfigError("handler", fn, "must be a callable taking a DeadLetter")
            self._handlers[name] = Handler(name, fn, inspect.iscoroutinefunction(fn))
            return fn

        return register

    @property
    def handlers(self) -> dict[str, Handler]:
        """The registered handlers by queue (a copy)."""
        return dict(self._handlers)

    def worker(self, **options: Any) -> Worker:
        """A ``Worker`` for this queue (options as ``Worker``'s)."""
        return Worker(self, **options)

    def process(
        self, *, limit: int | None = None, queues: Sequence[str] | None = None
    ) -> ProcessReport:
        """Process due messages of the handled queues until none is due (or ``limit`` taken)."""
        return Worker(self, queues=queues).run(until_idle=True, limit=limit)

    async def aprocess(
        self, *, limit: int | None = None, queues: Sequence[str] | None = None
    ) -> ProcessReport:
        """``process`` for asyncio (async handlers run concurrently)."""
        return await Worker(self, queues=queues).arun(until_idle=True, limit=limit)

    # -- inspection and manual intervention ----------------------------------------------------

    def get(self, id: str) -> DeadLetter | None:
        """The dead letter ``id``, or None."""
        return self.backend.get(str(id))

    def _require(self, id: str) -> DeadLetter:
        letter = self.backend.get(str(id))
        if letter is None:
            raise DeadLetterError(f"no dead letter with id {id!r} in {self.name!r}")
        return letter

    def list(
        self, filter: Filter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Dead letters matching ``filter``, newest first, ``limit`` (1..1000) per page; pass
        the page's ``cursor`` to get the next one."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ConfigError("limit", limit, "must be an integer in 1..1000")
        if cursor is not None and not (
            isinstance(cursor, str) and cursor.isascii() and cursor.isdigit()
        ):
            raise ConfigError("cursor", cursor, "must be a cursor from a previous page")
        return self.backend.list(filter or Filter(), limit, cursor)

    def retry(self, id: str) -> DeadLetter:
        """Make a pending or parked dead letter due now (a parked one gets one more attempt
        even when its attempts ran out); the updated record."""
        if self.backend.requeue(Filter(ids=(str(id),)), self.clock.time()) == 0:
            letter = self._require(id)
            raise DeadLetterError(
                f"dead letter {id!r} is {letter.status.value}: only pending or parked ones retry"
            )
        return self._require(id)

    def retry_many(self, filter: Filter | None = None) -> int:
        """``retry`` every pending or parked dead letter matching ``filter``; how many."""
        return self.backend.requeue(filter or Filter(), self.clock.time())

    def edit(self, id: str, payload: Any) -> DeadLetter:
        """Replace the payload of a pending or parked dead letter (then ``retry`` it)."""
        text = encode_payload(payload)
        if not self.backend.edit(str(id), text, self.clock.time()):
            letter = self._require(id)
            raise DeadLetterError(
                f"dead letter {id!r} is {letter.status.value}: only pending or parked ones edit"
            )
        return self._require(id)

    def discard(self, id: str, reason: str) -> DeadLetter:
        """Give up on an open dead letter for ``reason`` (kept, as discarded, until cleanup)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError("reason", reason, "must be a non-empty string")
        if self.backend.discard(Filter(ids=(str(id),)), reason, self.clock.time()) == 0:
            letter = self._require(id)
            raise DeadLetterError(
                f"dead letter {id!r} is {letter.status.value}: only open ones can be discarded"
            )
        return self._require(id)

    def purge(self, filter: Filter) -> int:
        """Delete every dead letter matching ``filter`` (``Filter()`` is all of them)."""
        if not isinstance(filter, Filter):
            raise ConfigError("filter", filter, "must be a Filter (Filter() matches all)")
        return self.backend.delete(filter)

    def stats(self) -> Stats:
        """Counts by status, queue, classification and error type; oldest pending; arrivals."""
        return self.backend.stats(self.clock.time(), self.rate_window)

    def cleanup(self) -> int:
        """Delete resolved and discarded records older than ``retention``; how many."""
        return self.backend.cleanup(self.clock.time() - self.retention)

    async def check_alerts(self, stats: Stats | None = None) -> builtins.list[DeadLetterAlert]:
        """Evaluate the alert thresholds on ``stats`` (default fresh ones); emit each alert as
        an event and send it to the sinks (a failing sink is logged). The alerts raised."""
        if self._alert_state is None or self.alerts is None:
            return []
        if stats is None:
            stats = await asyncio.to_thread(self.stats)
        raised = self._alert_state.evaluate(self.name, stats, self.clock.monotonic())
        for alert in raised:
            emit(alert)
            for sink in self.alerts.sinks:
                try:
                    await sink.send(alert)
                except Exception:
                    logger.exception("dead letter alert sink %r failed", sink)
        return raised

    def describe(self) -> dict[str, Any]:
        """The queue's configuration as plain data (for tools and dashboards)."""
        return {
            "name": self.name,
            "backend": self.backend.url,
            "backoff": self.backoff.describe(),
            "max_attempts": self.max_attempts,
            "lease": self.lease,
            "batch": self.batch,
            "retention": self.retention,
            "rate_window": self.rate_window,
            "handlers": sorted(self._handlers),
            "rules": self.classifier.describe(),
        }

    def close(self) -> None:
        """Close the backend (pending writes finish first); idempotent."""
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DeadLetterQueue({self.name!r}, {self.backend.url!r})"
