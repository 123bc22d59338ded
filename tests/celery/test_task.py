"""``ResilientTask`` and ``replay_handler``, run eagerly (no broker): the pipeline around the
body, dead-lettering of exhausted tasks and their replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.app.base import Celery
from celery.exceptions import Ignore

from buttress.breaker import CircuitBreaker
from buttress.celery import REPLAY_HEADER, ResilientTask, install, replay_handler
from buttress.dlq import Classification, DeadLetterQueue, Filter, Status
from buttress.errors import ConfigError
from buttress.registry import Registry
from buttress.retry import Backoff, Retry
from buttress.testing import ManualClock


@pytest.fixture
def dlq() -> Iterator[DeadLetterQueue]:
    """An in-memory dead letter queue on a manual clock (attempts are due when retried)."""
    with DeadLetterQueue("sqlite:///:memory:", clock=ManualClock(wall=1_800_000_000)) as queue:
        yield queue


def quick_retry(**options: Any) -> Retry:
    """Three attempts on ConnectionError without waiting (virtual time)."""
    return Retry(
        on=options.pop("on", ConnectionError),
        attempts=3,
        backoff=Backoff.constant(0.5),
        clock=ManualClock(),
        **options,
    )


def letters(dlq: DeadLetterQueue, queue: str) -> list[Any]:
    """The dead letters of ``queue``, newest first."""
    return list(dlq.list(Filter(queue=queue)).items)


def test_transient_failures_are_retried_by_the_pipeline(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """A body failing twice with a retried error succeeds on the third attempt; nothing is
    dead-lettered, a breaker in the pipeline saw every attempt, and every attempt saw the
    task's request."""
    breaker = CircuitBreaker("pay", minimum_calls=100)
    seen: list[str] = []

    @eager_app.task(
        base=ResilientTask,
        bind=True,
        policies=(quick_retry(), breaker),
        dead_letter=dlq,
        shared=False,
    )
    def pay(self: ResilientTask, order: int) -> str:
        seen.append(self.request.id)
        if len(seen) < 3:
            raise ConnectionError("bank down")
        return f"paid {order}"

    result = pay.delay(7)
    assert result.get() == "paid 7"
    assert seen == [result.id] * 3
    assert breaker.snapshot().calls == 3
    assert dlq.stats().total == 0


def test_a_pipeline_named_in_the_installed_registry(eager_app: Celery, tmp_path: Any) -> None:
    """``pipeline="name"`` is looked up in the registry given to ``install``."""
    registry = Registry()
    registry.pipeline("bank", quick_retry())
    integration = install(eager_app, registry=registry, state_dir=tmp_path)
    attempts: list[str] = []

    @eager_app.task(base=ResilientTask, pipeline="bank", shared=False)
    def refund(who: str) -> str:
        attempts.append(who)
        if len(attempts) == 1:
            raise ConnectionError("bank down")
        return who

    try:
        assert refund.delay("ann").get() == "ann"
        assert refund.resilience() is registry.get("bank", "pipeline")
        assert attempts == ["ann", "ann"]
    finally:
        integration.close()


def test_exhausted_task_goes_to_the_dlq_with_its_arguments(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """When the retries run out the task fails with its own last error and is kept in the
    DLQ: queue = task name, payload = args and kwargs, headers = task name and id."""

    @eager_app.task(
        base=ResilientTask,
        policies=(quick_retry(),),
        dead_letter=dlq,
        name="shop.ship",
        shared=False,
    )
    def ship(order: int, *, express: bool) -> None:
        raise ConnectionError("carrier down")

    result = ship.delay(42, express=True)
    assert result.failed()
    assert isinstance(result.result, ConnectionError)
    (letter,) = letters(dlq, "shop.ship")
    assert letter.payload == {"args": [42], "kwargs": {"express": True}}
    assert letter.headers == {"task": "shop.ship", "task_id": result.id}
    assert letter.key == f"celery:{result.id}"
    assert letter.classification is Classification.TRANSIENT
    assert letter.status is Status.PENDING
    assert letter.error.message == "carrier down"


def test_a_permanent_error_is_not_retried_and_is_parked(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """An error the retry does not handle fails at once and its dead letter is parked."""
    calls: list[str] = []

    @eager_app.task(base=ResilientTask, policies=(quick_retry(),), dead_letter=dlq, shared=False)
    def parse(text: str) -> int:
        calls.append(text)
        return int(text)

    assert parse.delay("x").failed()
    assert calls == ["x"]
    (letter,) = letters(dlq, parse.name)
    assert letter.status is Status.PARKED
    assert letter.classification is Classification.PERMANENT


def test_arguments_that_are_not_json_are_kept_as_poison(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """Arguments JSON cannot hold are kept as their repr, parked as poison (not replayable)."""
    eager_app.conf.task_serializer = "pickle"
    eager_app.conf.accept_content = ["pickle", "json"]

    @eager_app.task(base=ResilientTask, dead_letter=dlq, shared=False)
    def store(blob: object) -> None:
        raise ConnectionError("disk gone")

    store.delay({1, 2})
    (letter,) = letters(dlq, store.name)
    assert letter.classification is Classification.POISON
    assert "{1, 2}" in letter.payload["repr"]


def test_celery_control_exceptions_pass_through_the_pipeline(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """``Ignore`` is neither retried (even by a retry on Exception) nor a breaker failure, nor
    dead-lettered: Celery gets it as raised."""
    breaker = CircuitBreaker("skip", minimum_calls=100)
    calls: list[int] = []

    @eager_app.task(
        base=ResilientTask,
        policies=(quick_retry(on=Exception), breaker),
        dead_letter=dlq,
        shared=False,
    )
    def skip(n: int) -> None:
        calls.append(n)
        raise Ignore()

    assert skip.delay(1).state == "IGNORED"
    assert calls == [1]
    assert breaker.snapshot().failures == 0
    assert dlq.stats().total == 0


def test_dead_letter_false_keeps_nothing(eager_app: Celery, tmp_path: Any) -> None:
    """``dead_letter=False`` opts a task out of the installed DLQ."""
    with DeadLetterQueue("sqlite:///:memory:") as queue:
        integration = install(eager_app, dlq=queue, state_dir=tmp_path)

        @eager_app.task(base=ResilientTask, dead_letter=False, shared=False)
        def fire() -> None:
            raise ConnectionError("down")

        @eager_app.task(base=ResilientTask, shared=False)
        def kept() -> None:
            raise ConnectionError("down")

        try:
            assert fire.delay().failed()
            assert kept.delay().failed()
            assert [letter.queue for letter in queue.list().items] == [kept.name]
        finally:
            integration.close()


def test_a_dlq_url_is_opened_once_per_process(eager_app: Celery, tmp_path: Any) -> None:
    """Tasks naming the same DLQ URL share one queue, opened on first use."""
    url = f"sqlite:///{tmp_path / 'dlq.db'}"

    @eager_app.task(base=ResilientTask, dead_letter=url, shared=False)
    def one() -> None:
        raise ConnectionError("down")

    @eager_app.task(base=ResilientTask, dead_letter=url, shared=False)
    def two() -> None:
        raise ConnectionError("down")

    one.delay()
    two.delay()
    queue = one.dead_letters()
    assert queue is two.dead_letters()
    assert queue is not None
    assert sorted(letter.queue for letter in queue.list().items) == sorted([one.name, two.name])
    queue.close()


def test_an_unknown_pipeline_name_fails_the_task(eager_app: Celery, dlq: DeadLetterQueue) -> None:
    """A pipeline name missing from the registry fails the task with an error naming it; the
    task's work is kept in the DLQ rather than lost."""

    @eager_app.task(
        base=ResilientTask, pipeline="nope", registry=Registry(), dead_letter=dlq, shared=False
    )
    def work() -> None:
        pass

    result = work.delay()
    assert result.failed()
    assert "pipeline" in str(result.result)
    assert "'nope'" in str(result.result)
    (letter,) = letters(dlq, work.name)
    assert "'nope'" in letter.error.message


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"autoretry_for": (ConnectionError,)}, "autoretry_for"),
        ({"pipeline": 3}, "pipeline"),
        ({"pipeline": ""}, "pipeline"),
        ({"policies": "retry"}, "policies"),
        ({"policies": (object(),)}, "policies[0]"),
        ({"pipeline": "a", "policies": (Retry(on=OSError),)}, "policies"),
        ({"registry": {}}, "registry"),
        ({"dead_letter": True}, "dead_letter"),
        ({"dead_letter_queue": ""}, "dead_letter_queue"),
    ],
)
def test_bad_task_options_are_refused_when_the_task_is_made(
    attributes: dict[str, Any], field: str
) -> None:
    """Each bad option raises ConfigError naming it when the task class is created."""
    with pytest.raises(ConfigError) as caught:
        type("Bad", (ResilientTask,), attributes)
    assert caught.value.field == field


def test_replay_resubmits_the_task_and_resolves_the_dead_letter(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """A replayed dead letter runs the task again with its arguments; success resolves it."""
    broken = {"on": True}
    seen: list[tuple[int, str]] = []

    @eager_app.task(base=ResilientTask, dead_letter=dlq, name="shop.mail", shared=False)
    def mail(order: int, *, to: str) -> None:
        if broken["on"]:
            raise ConnectionError("smtp down")
        seen.append((order, to))

    mail.delay(5, to="ann@example.com")
    (letter,) = letters(dlq, "shop.mail")
    dlq.handler("shop.mail")(replay_handler(eager_app))
    broken["on"] = False
    dlq.retry(letter.id)
    report = dlq.process()
    assert report.resolved == 1
    assert seen == [(5, "ann@example.com")]
    after = dlq.get(letter.id)
    assert after is not None
    assert after.status is Status.RESOLVED


def test_a_failing_replay_goes_back_to_its_dead_letter(
    eager_app: Celery, dlq: DeadLetterQueue
) -> None:
    """A replay that fails again is not dead-lettered twice: the same record is retried later
    with the new attempt in its history."""

    @eager_app.task(base=ResilientTask, dead_letter=dlq, name="shop.sms", shared=False)
    def sms(number: str) -> None:
        raise ConnectionError("gateway down")

    sms.delay("555")
    (letter,) = letters(dlq, "shop.sms")
    dlq.handler("shop.sms")(replay_handler(eager_app))
    dlq.retry(letter.id)
    assert dlq.process().retried == 1
    (after,) = letters(dlq, "shop.sms")
    assert after.id == letter.id
    assert after.attempts == 1
    assert after.status is Status.PENDING
    assert after.history[-1].message == "gateway down"


def test_a_replay_without_arguments_is_parked(eager_app: Celery, dlq: DeadLetterQueue) -> None:
    """A payload that holds no task arguments cannot be replayed: ValueError, parked."""
    dlq.handler("shop.x")(replay_handler(eager_app))
    id = dlq.add({"repr": "(<object>,)"}, error=ConnectionError("down"), queue="shop.x")
    dlq.retry(id)
    assert dlq.process().parked == 1
    letter = dlq.get(id)
    assert letter is not None
    assert letter.error.type == "ValueError"


def test_a_replay_that_gives_no_result_in_time_times_out(dlq: DeadLetterQueue) -> None:
    """A replayed task whose result does not come within ``wait`` is a timeout: the dead
    letter comes back later. The message carries the replay header."""
    app = Celery("replay-timeout", broker="memory://", backend="cache+memory://")
    sent: list[Any] = []
    app.conf.task_routes = {"nowhere.*": {"queue": "nowhere"}}

    from celery.signals import before_task_publish

    def record(headers: dict[str, Any], **_: Any) -> None:
        sent.append(headers)

    before_task_publish.connect(record, weak=False)
    try:
        dlq.handler("nowhere.task")(replay_handler(app, wait=2.0, clock=ManualClock()))
        id = dlq.add({"args": [1], "kwargs": {}}, error=ConnectionError("x"), queue="nowhere.task")
        dlq.retry(id)
        assert dlq.process().retried == 1
    finally:
        before_task_publish.disconnect(record)
        app.close()
    letter = dlq.get(id)
    assert letter is not None
    assert letter.history[-1].classification is Classification.TIMEOUT
    assert sent[0][REPLAY_HEADER] == id


def test_replay_handler_refuses_bad_input() -> None:
    """Not a Celery app, or a wait that is not positive: ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        replay_handler(object())
    assert caught.value.field == "app"
    with pytest.raises(ConfigError) as caught:
        replay_handler(Celery("x", set_as_current=False), wait=0)
    assert caught.value.field == "wait"
