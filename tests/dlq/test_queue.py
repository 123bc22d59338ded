"""The queue's options and arguments: bad values raise ConfigError naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import ConfigError
from buttress.dlq import (
    Classification,
    Classifier,
    DeadLetterQueue,
    ErrorInfo,
    Filter,
    Rule,
    SQLiteBackend,
    Status,
    open_backend,
)
from buttress.dlq._records import Attempt, decode_history, encode_history, first_history
from buttress.testing import ManualClock

ERROR = ConnectionError("down")


@pytest.fixture
def dlq():
    """An in-memory queue on a manual clock."""
    with DeadLetterQueue("sqlite:///:memory:", clock=ManualClock()) as q:
        yield q


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": ""}, "name"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"lease": -1}, "lease"),
        ({"batch": 0}, "batch"),
        ({"retention": 0}, "retention"),
        ({"rate_window": "5m"}, "rate_window"),
        ({"backoff": 5}, "backoff"),
        ({"alerts": {"parked_above": 1}}, "alerts"),
        ({"clock": object()}, "clock"),
        ({"rules": [Rule("poison", on=KeyError)], "classifier": Classifier()}, "rules"),
    ],
)
def test_bad_options(options: dict, field: str) -> None:
    """Each invalid option raises ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        DeadLetterQueue("sqlite:///:memory:", **options)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("backend", "field"),
    [(42, "backend"), ("postgres://x/db", "url"), ("memory://", "url")],
)
def test_bad_backends(backend: object, field: str) -> None:
    """The backend must be a Backend or a sqlite or redis URL."""
    with pytest.raises(ConfigError) as info:
        DeadLetterQueue(backend)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"queue": ""}, "queue"),
        ({"key": ""}, "key"),
        ({"key": "k" * 513}, "key"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"headers": {"a": 1}}, "headers"),
        ({"classification": "weird"}, "classification"),
        ({"error": "boom"}, "error"),
    ],
)
def test_bad_add_arguments(dlq, kwargs: dict, field: str) -> None:
    """Each invalid add() argument raises ConfigError naming it; nothing is stored."""
    kwargs.setdefault("error", ERROR)
    with pytest.raises(ConfigError) as info:
        dlq.add({"x": 1}, **kwargs)
    assert info.value.field == field
    assert dlq.stats().total == 0


def test_error_none_and_error_info(dlq) -> None:
    """error=None keeps deferred work (transient); an ErrorInfo is stored as given."""
    deferred = dlq.get(dlq.add({"x": 1}))
    assert (deferred.error.type, deferred.classification) == ("Deferred", Classification.TRANSIENT)
    imported = dlq.get(dlq.add({"x": 2}, error=ErrorInfo("Legacy", "from the old queue", "tb")))
    assert imported.error == ErrorInfo("Legacy", "from the old queue", "tb")
    assert imported.classification is Classification.UNKNOWN
    forced = dlq.get(dlq.add({"x": 3}, error=ERROR, classification="poison"))
    assert (forced.status, forced.classification) == (Status.PARKED, Classification.POISON)


def test_traceback_is_kept(dlq) -> None:
    """A raised error keeps its traceback text (the end of it, bounded)."""
    try:
        raise ConnectionError("refused")
    except ConnectionError as exc:
        letter = dlq.get(dlq.add({}, error=exc))
    assert "Traceback (most recent call last)" in letter.error.traceback
    assert letter.error.traceback.rstrip().endswith("ConnectionError: refused")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"cursor": "abc"}, "cursor")],
)
def test_bad_list_arguments(dlq, kwargs: dict, field: str) -> None:
    """list() checks its limit and cursor."""
    with pytest.raises(ConfigError) as info:
        dlq.list(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"classification": "meh"}, "classification"),
        ({"queue": ""}, "queue"),
        ({"since": "yesterday"}, "since"),
        ({"ids": [1, 2]}, "ids"),
    ],
)
def test_bad_filters(kwargs: dict, field: str) -> None:
    """A Filter with a bad value raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Filter(**kwargs)
    assert info.value.field == field


def test_filter_plain_data() -> None:
    """A Filter shows only its set fields; enums are stored as their values."""
    chosen = Filter(status=Status.PARKED, queue="emails", ids=("1",))
    assert chosen.to_dict() == {"queue": "emails", "status": "parked", "ids": ["1"]}
    assert Filter().to_dict() == {}


def test_purge_needs_a_filter(dlq) -> None:
    """purge() takes a Filter (Filter() for everything), never nothing by accident."""
    with pytest.raises(ConfigError, match="filter"):
        dlq.purge(None)  # type: ignore[arg-type]


def test_describe_and_urls(tmp_path) -> None:
    """describe() is plain data; URLs open the right backend."""
    dlq = DeadLetterQueue(f"sqlite:///{tmp_path}/dlq.db", retention=timedelta(days=1))
    dlq.handler("emails")(lambda letter: None)
    described = dlq.describe()
    assert described["handlers"] == ["emails"]
    assert described["retention"] == 86400
    assert described["backend"] == f"sqlite:///{tmp_path}/dlq.db"
    assert isinstance(dlq.backend, SQLiteBackend)
    assert repr(dlq).startswith("DeadLetterQueue('dlq'")
    dlq.close()
    assert type(open_backend("redis://127.0.0.1:6379/15")).__name__ == "RedisBackend"


def test_handler_must_be_callable(dlq) -> None:
    """Registering something that is not callable fails at once."""
    with pytest.raises(ConfigError, match="handler"):
        dlq.handler("q")(42)  # type: ignore[arg-type]
    assert dlq.handlers == {}


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.text(),
    st.sampled_from(list(Classification)),
)
def test_first_history_is_the_encoded_history(at: float, kind: str, message: str, c) -> None:
    """The hand-built first history entry is exactly what encode_history writes."""
    error = ErrorInfo(kind, message)
    expected = encode_history((Attempt(0, at, kind, message, c),))
    assert first_history(at, error, c) == expected
    assert decode_history(first_history(at, error, c))[0].message == message
