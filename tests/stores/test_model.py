"""Property: for random operation sequences, every backend behaves like a tiny dict model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.errors import StoreError
from buttress.stores import store_from_url
from buttress.testing import ManualClock
from tests.stores.conftest import delete_redis_keys, unique_prefix

INT64 = (-(2**63), 2**63 - 1)
KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.sampled_from(
    [b"", b"0", b"1", b"-5", b"007", b"x", b"9223372036854775807", b"-9223372036854775808"]
)
AMOUNTS = st.integers(-3, 3) | st.sampled_from([2**62, -(2**62), 2**63 - 1])
ERROR = "StoreError"


def operations(ttls: st.SearchStrategy[float | None], *, advance: bool) -> st.SearchStrategy:
    """Sequences of (name, args...) operations; ``advance`` lets virtual time pass."""
    choices = [
        st.tuples(st.just("set"), KEYS, VALUES, ttls),
        st.tuples(st.just("set_if_absent"), KEYS, VALUES, ttls),
        st.tuples(st.just("compare_and_set"), KEYS, VALUES | st.none(), VALUES | st.none(), ttls),
        st.tuples(st.just("delete"), KEYS),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("ttl"), KEYS),
        st.tuples(st.just("incr"), KEYS, AMOUNTS, ttls),
        st.tuples(st.just("get_counter"), KEYS),
    ]
    if advance:
        choices.append(st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 2.0])))
    return st.lists(st.one_of(choices), max_size=30)


@dataclass
class Model:
    """The contract as a dict of (value, deadline) and a clock."""

    now: float = 0.0
    rows: dict[str, tuple[bytes, float | None]] = field(default_factory=dict)

    def live(self, key: str) -> tuple[bytes, float | None] | None:
        row = self.rows.get(key)
        return row if row is not None and (row[1] is None or row[1] > self.now) else None

    def write(self, key: str, value: bytes, ttl: float | None) -> None:
        self.rows[key] = (value, None if ttl is None else self.now + ttl)

    def counter(self, key: str) -> int | str:
        row = self.live(key)
        if row is None:
            return 0
        if not re.fullmatch(rb"0|-?[1-9][0-9]*", row[0]):  # Redis's rule for integers
            return ERROR
        number = int(row[0])
        return number if INT64[0] <= number <= INT64[1] else ERROR

    def apply(self, op: tuple[Any, ...]) -> Any:
        name, key, *args = op
        row = self.live(key) if name != "advance" else None
        if name == "set":
            self.write(key, args[0], args[1])
            return None
        if name == "set_if_absent":
            if row is not None:
                return False
            self.write(key, args[0], args[1])
            return True
        if name == "compare_and_set":
            expected, new, ttl = args
            if (None if row is None else row[0]) != expected:
                return False
            if new is None:
                self.rows.pop(key, None)
            else:
                self.write(key, new, ttl)
            return True
        if name == "delete":
            self.rows.pop(key, None)
            return row is not None
        if name == "get":
            return None if row is None else row[0]
        if name == "ttl":
            if row is None:
                return None
            return math.inf if row[1] is None else row[1] - self.now
        if name == "get_counter":
            return self.counter(key)
        current = self.counter(key)  # incr
        amount, ttl = args
        if current == ERROR or not INT64[0] <= current + amount <= INT64[1]:
            return ERROR
        deadline = row[1] if row is not None and row[1] is not None else None
        self.rows[key] = (str(current + amount).encode(), deadline)
        if deadline is None and ttl is not None:
            self.rows[key] = (self.rows[key][0], self.now + ttl)
        return current + amount


def run_against_model(store: Any, ops: list[tuple[Any, ...]], clock: ManualClock | None) -> None:
    """Apply ``ops`` to the store and the model; every result must agree."""
    model = Model()
    for op in ops:
        if op[0] == "advance":
            assert clock is not None
            clock.advance(op[1])
            model.now += op[1]
            continue
        expected = model.apply(op)
        try:
            actual = getattr(store, op[0])(*op[1:])
        except StoreError:
            actual = ERROR
        if op[0] == "ttl" and isinstance(expected, float) and math.isfinite(expected):
            if clock is None:  # real time on Redis: only "a finite ttl still running"
                assert 0 < actual <= expected, op
            else:
                assert math.isclose(actual, expected, abs_tol=1e-6), op
        else:
            assert actual == expected, (op, actual, expected)


MANUAL_TTLS = st.none() | st.sampled_from([1.0, 2.5])


@settings(max_examples=150, deadline=None)
@given(ops=operations(MANUAL_TTLS, advance=True))
def test_memory_matches_the_model(ops) -> None:
    """MemoryStore on a ManualClock behaves exactly like the model, expiry included."""
    clock = ManualClock()
    with store_from_url("memory://", clock=clock) as store:
        run_against_model(store, ops, clock)


@settings(max_examples=100, deadline=None)
@given(ops=operations(MANUAL_TTLS, advance=True))
def test_sqlite_matches_the_model(ops) -> None:
    """SQLiteStore on a ManualClock (wall-clock deadlines) behaves like the model."""
    clock = ManualClock()
    with store_from_url("sqlite:///:memory:", clock=clock) as store:
        run_against_model(store, ops, clock)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations(st.none() | st.just(60.0), advance=False))
def test_redis_matches_the_model(live_redis_url: str, ops) -> None:
    """RedisStore (scripts and commands) behaves like the model; ttls are long, time real."""
    prefix = unique_prefix()
    try:
        with store_from_url(live_redis_url, prefix=prefix) as store:
            run_against_model(store, ops, None)
    finally:
        delete_redis_keys(live_redis_url, prefix)
