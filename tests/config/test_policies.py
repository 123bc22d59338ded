"""Policies and pipelines declared in buttress.toml are built with their options, and work."""

from __future__ import annotations

import warnings

import httpx
import pytest

from buttress import (
    Backoff,
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    Pipeline,
    Retry,
    RetryBudget,
    RetryRule,
    Timeout,
)
from buttress.config import load_config
from buttress.testing import ManualClock


def is_bad(result: object) -> bool:
    """A result predicate referred to by dotted path from the tests' files."""
    return result == "bad"


def test_no_file_gives_defaults_only() -> None:
    """Without a file the configuration is the defaults: production, empty registry, port 8000."""
    config = load_config(environ={})
    assert config.path is None
    assert config.profile == "production"
    assert config.registry.describe() == {}
    assert config.server.port == 8000
    assert config.server.host == "127.0.0.1"


def test_configured_breaker_opens_per_its_options(load, clock: ManualClock) -> None:
    """A breaker from the file trips after its consecutive failures and reopens after open_for."""
    config = load(
        """
        [breakers.payments]
        consecutive_failures = 2
        open_for = 5
        on = ["ConnectionError"]
        """
    )
    breaker = config.registry.get("payments", "breaker")
    assert isinstance(breaker, CircuitBreaker)

    def down() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(down)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(down)
    assert caught.value.retry_after == 5.0
    clock.advance(5)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state.value == "closed"


def test_breaker_on_ignores_other_errors(load) -> None:
    """`on` names what counts: an error outside it never opens the breaker."""
    config = load(
        """
        [breakers.db]
        consecutive_failures = 1
        on = ["httpx.ConnectError"]
        ignore = "KeyError"
        """
    )
    breaker = config.registry.get("db", "breaker")
    for _ in range(3):
        with pytest.raises(ValueError, match="nope"):
            breaker.call(lambda: (_ for _ in ()).throw(ValueError("nope")))
    assert breaker.state.value == "closed"
    with pytest.raises(httpx.ConnectError):
        breaker.call(lambda: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    assert breaker.state.value == "open"
    assert breaker.options.ignore is KeyError


def test_backoff_tables_become_backoffs(load) -> None:
    """`backoff` and `open_backoff` tables (or a bare kind name) build Backoff schedules."""
    config = load(
        """
        [breakers.b]
        open_backoff = {kind = "exponential", base = 10, factor = 3, cap = 300, jitter = "full"}

        [retries.r]
        on = "ConnectionError"
        backoff = {kind = "linear", base = 0.5, step = 0.5, cap = "2"}

        [retries.s]
        on = "ConnectionError"
        backoff = "fibonacci"
        """
    )
    breaker = config.registry.get("b", "breaker")
    assert breaker.options.open_backoff == Backoff.exponential(10, 3, 300, jitter="full")
    assert config.registry.get("r", "retry").options.backoff == Backoff.linear(0.5, 0.5, 2)
    assert config.registry.get("s", "retry").options.backoff == Backoff.fibonacci()


def test_retry_with_budget_and_rules(load, clock: ManualClock) -> None:
    """A retry names its budget; `on` as tables gives per-error rules; it retries as told."""
    config = load(
        """
        [budgets.shared]
        ratio = 0.5
        min_per_second = 1
        ttl = 10

        [retries.api]
        budget = "shared"
        attempts = 2
        on = [
          {on = "ConnectionError", attempts = 4, backoff = {kind = "constant", delay = 1}},
          {on = ["TimeoutError", "OSError"]},
        ]
        """
    )
    retry = config.registry.get("api", "retry")
    budget = config.registry.get("shared", "budget")
    assert isinstance(retry, Retry)
    assert isinstance(budget, RetryBudget)
    assert retry.options.budget is budget
    assert budget.ratio == 0.5
    assert retry.options.on[0] == RetryRule(
        ConnectionError, attempts=4, backoff=Backoff.constant(1)
    )
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("reset")
        return "ok"

    assert retry.call(flaky) == "ok"
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_callables_by_dotted_path(load) -> None:
    """`on_result` takes a dotted path to a predicate; a retry then retries bad results."""
    config = load(
        f"""
        [retries.r]
        on = "ConnectionError"
        on_result = "{__name__}.is_bad"
        attempts = 2
        backoff = {{kind = "constant", delay = 0}}
        """
    )
    results = iter(["bad", "good"])
    assert config.registry.get("r", "retry").call(lambda: next(results)) == "good"


def test_timeouts_bulkheads_fallbacks(load) -> None:
    """Timeouts, bulkheads and fallbacks get their options from their tables."""
    config = load(
        """
        [timeouts.t]
        seconds = 2.5
        thread = true

        [bulkheads.b]
        max_concurrent = 3
        max_queued = 2
        queue_timeout = 1

        [fallbacks.f]
        value = {status = "degraded"}
        on = ["ConnectionError"]
        """
    )
    timeout = config.registry.get("t", "timeout")
    assert isinstance(timeout, Timeout)
    assert (timeout.options.seconds, timeout.options.thread) == (2.5, True)
    bulkhead = config.registry.get("b", "bulkhead")
    assert isinstance(bulkhead, Bulkhead)
    assert (bulkhead.options.max_concurrent, bulkhead.options.max_queued) == (3, 2)
    fallback = config.registry.get("f", "fallback")
    assert isinstance(fallback, Fallback)

    def down() -> None:
        raise ConnectionError("down")

    assert fallback.call(down) == {"status": "degraded"}


def test_pipelines_compose_outer_to_inner(load, clock: ManualClock) -> None:
    """A pipeline lists `kind.name` references outermost first; pipelines may nest."""
    config = load(
        """
        [fallbacks.pay]
        value = "later"
        [timeouts.pay]
        seconds = 1
        [retries.pay]
        on = "ConnectionError"
        attempts = 2
        backoff = {kind = "constant", delay = 0.5}
        [breakers.pay]
        minimum_calls = 2
        window = 2
        [bulkheads.pay]
        max_concurrent = 1

        [pipelines.inner]
        policies = ["timeout.pay", "retry.pay", "breaker.pay"]
        [pipelines.pay]
        policies = ["bulkhead.pay", "fallback.pay", "pipeline.inner"]
        """
    )
    pipeline = config.registry.get("pay", "pipeline")
    assert isinstance(pipeline, Pipeline)
    names = [type(p).__name__ for p in pipeline.policies]
    assert names == ["Bulkhead", "Fallback", "Timeout", "Retry", "CircuitBreaker"]
    assert pipeline.policies[4] is config.registry.get("pay", "breaker")

    def down() -> None:
        raise ConnectionError("down")

    assert pipeline.call(down) == "later"
    assert clock.sleeps == [0.5]
    assert config.registry.get("pay", "breaker").state.value == "open"


def test_a_setting_without_effect_warns_with_its_path(load) -> None:
    """A policy's warning (queue_timeout without a queue) is re-issued with the config path."""
    with pytest.warns(UserWarning, match=r"bulkheads\.b: queue_timeout has no effect"):
        config = load("[bulkheads.b]\nmax_concurrent = 1\nqueue_timeout = 1\n")
    assert config.warnings == (
        "bulkheads.b: queue_timeout has no effect with max_queued=0: no caller ever waits",
    )


def test_strings_holding_numbers_are_numbers(load) -> None:
    """A number from `${VAR}` arrives as a string and is converted where a number is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load(
            """
            [server]
            port = "${PORT}"
            public_reads = "${PUBLIC:-true}"
            [breakers.b]
            open_for = "${OPEN_FOR:-7.5}"
            """,
            env={"PORT": "9100"},
        )
    assert config.server.port == 9100
    assert config.server.public_reads is True
    assert config.registry.get("b", "breaker").options.open_for == 7.5
