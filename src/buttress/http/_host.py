"""``HostPipeline``: the policies of one host, run around each request, sync or async.

Outer to inner, per request: statistics, retry (the whole request, ``total_timeout``), hedge
(async GET and HEAD only), circuit breaker, rate limit, the attempt's timeouts, the wrapped
transport. Each attempt is checked by the breaker before it waits for a rate-limit token, so a
request refused by an open breaker spends no quota; every attempt sent, retries and hedges
included, takes a token. An answer that may be retried has its body read at once, which
returns its connection to the pool before the next attempt.
"""

from __future__ import annotations

import random
from typing import Any

import httpx

from buttress._clock import Clock
from buttress._deadline import remaining
from buttress.breaker import CircuitBreaker
from buttress.errors import CircuitOpenError, ConfigError, RateLimitedError
from buttress.hedge import Hedge
from buttress.http._policy import HostPolicy
from buttress.http._stats import (
    CIRCUIT_OPEN,
    CONNECT_ERROR,
    ERROR,
    RATE_LIMITED,
    TIMEOUT,
    TRANSPORT_ERROR,
    HealthThresholds,
    HostRecorder,
    HostStats,
    outcome_of_status,
)
from buttress.ratelimit import RateLimiter
from buttress.retry import Retry
from buttress.retry._hints import HINT_STATUSES, parse_retry_after

__all__ = ["HostPipeline"]

HOST_FAILURES: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
"""Errors that count against a host (its breaker) and are retried for idempotent requests."""

UNSENT: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Errors of requests that never reached the server: retried whatever the method."""

_LOCAL = frozenset({CIRCUIT_OPEN, RATE_LIMITED, ERROR})  # outcomes that never hit the network
_HEDGED_METHODS = frozenset({"GET", "HEAD"})
_PHASES = ("connect", "read", "write", "pool")
_SHORTEST = 0.001  # the least time an attempt is given once the total deadline is near


def host_failure(exc: BaseException) -> bool:
    """A transport error that says the host is unwell (timeouts, network, broken answers)."""
    return isinstance(exc, HOST_FAILURES)


def not_host_failure(exc: BaseException) -> bool:
    """Any other error (a rejection, a bad URL, a consumed stream): not the host's doing."""
    return not isinstance(exc, HOST_FAILURES)


def server_error(response: httpx.Response) -> bool:
    """A 5xx answer: a failure for the breaker."""
    return response.status_code >= 500


def never_sent(exc: BaseException) -> bool:
    """The request never reached the server: safe to send again, whatever its method."""
    return isinstance(exc, UNSENT)


def outcome_of_error(exc: BaseException) -> int:
    """The outcome index of an error raised through the transport."""
    if isinstance(exc, CircuitOpenError):
        return CIRCUIT_OPEN
    if isinstance(exc, RateLimitedError):
        return RATE_LIMITED
    if isinstance(exc, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        return CONNECT_ERROR
    if isinstance(exc, httpx.TransportError):
        return TRANSPORT_ERROR
    return ERROR


class _Unaccepted(Exception):
    """A hedged attempt answered with a status worth another attempt."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _Call:
    """One request on its way: the request, its total deadline, whether answers may be retried."""

    __slots__ = ("deadline", "request", "retrying")

    def __init__(self, request: httpx.Request, deadline: float | None, retrying: bool) -> None:
        self.request = request
        self.deadline = deadline
        self.retrying = retrying


class HostPipeline:
    """The breaker, rate limiter, retries and hedge of one host, and its statistics."""

    __slots__ = (
        "_clock",
        "_full_retry",
        "_statuses",
        "_unsent_retry",
        "breaker",
        "client",
        "hedge",
        "host",
        "limiter",
        "policy",
        "recorder",
    )

    def __init__(
        self,
        client: str,
        host: str,
        policy: HostPolicy,
        *,
        clock: Clock,
        rng: random.Random | None,
        window: int,
    ) -> None:
        name = f"{client}:{host}"
        self.client, self.host, self.policy = client, host, policy
        self._clock = clock
        self._statuses = policy.retry_statuses
        self.recorder = HostRecorder(window)
        self.breaker = (
            CircuitBreaker(
                name,
                failure_rate=policy.failure_rate,
                minimum_calls=policy.minimum_calls,
                window=policy.window,
                open_for=policy.open_for,
                on=host_failure,
                ignore=not_host_failure,
                on_result=server_error,
                clock=clock,
                rng=rng,
            )
            if policy.breaker
            else None
        )
        algorithm = policy.rate_limit
        if algorithm is not None and not isinstance(algorithm, str):
            self.limiter: RateLimiter | None = RateLimiter(algorithm, name=name, clock=clock)
        else:
            self.limiter = None
        self._full_retry: Retry | None = None
        self._unsent_retry: Retry | None = None
        if policy.attempts > 1:
            common: dict[str, Any] = {
                "attempts": policy.attempts,
                "backoff": policy.backoff,
                "timeout": policy.total_timeout,
                "clock": clock,
                "rng": rng,
                "name": name,
            }
            self._full_retry = Retry(on=host_failure, on_result=self._retryable_answer, **common)
            self._unsent_retry = Retry(on=never_sent, **common)
        self.hedge = (
            Hedge(delay=policy.hedge_delay, max_hedged=policy.max_hedged, name=name, clock=clock)
            if policy.hedge_delay is not None
            else None
        )

    # -- decisions ---------------------------------------------------------------------------

    def _retryable_answer(self, response: httpx.Response) -> bool:
        """An answer worth another attempt: a retry status, unless its Retry-After asks for
        longer than the backoff's cap (then it goes back to the caller as it is)."""
        if response.status_code not in self._statuses:
            return False
        if response.status_code in HINT_STATUSES:
            header = response.headers.get("Retry-After")
            if header is not None:
                hint = parse_retry_after(header, self._clock.time)
                if hint is not None and hint > self.policy.backoff.cap:
                    return False
        return True

    def _retry_for(self, request: httpx.Request) -> Retry | None:
        """The full retry for a replayable idempotent request, else the retry of unsent ones."""
        if self._full_retry is not None and isinstance(request.stream, httpx.ByteStream):
            method = request.method
            if method in self.policy.retry_methods or "idempotency-key" in request.headers:
                return self._full_retry
        return self._unsent_retry

    def _start(self, request: httpx.Request) -> tuple[_Call, Retry | None, float]:
        start = self._clock.monotonic()
        total = self.policy.total_timeout
        retry = self._retry_for(request)
        retrying = retry is not None and retry is self._full_retry
        call = _Call(request, None if total is None else start + total, retrying)
        return call, retry, start

    def _bound(self, call: _Call, limit: float | None) -> float | None:
        """The seconds an attempt (or a rate-limit wait) may take: ``limit``, the time left
        in the total timeout and in an enclosing buttress ``Timeout``, whichever is least."""
        bounds = [b for b in (limit, remaining()) if b is not None]
        if call.deadline is not None:
            bounds.append(call.deadline - self._clock.monotonic())
        return max(min(bounds), 0.0) if bounds else None

    def _prepared(self, call: _Call) -> httpx.Request:
        """The request to send, its timeouts no longer than this attempt may take."""
        request = call.request
        bound = self._bound(call, self.policy.timeout)
        if bound is None:
            self.recorder.sent()
            return request
        bound = max(bound, _SHORTEST)
        current = request.extensions.get("timeout") or {}
        phases = {}
        for phase in _PHASES:
            value = current.get(phase)
            phases[phase] = bound if value is None else min(value, bound)
        self.recorder.sent()
        return httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "timeout": phases},
        )

    def _record(self, start: float, outcome: int) -> None:
        seconds = None if outcome in _LOCAL else self._clock.monotonic() - start
        self.recorder.record(outcome, seconds)

    # -- sync ----------------------------------------------------------------------------------

    def handle(self, transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through ``transport`` under this host's policies."""
        call, retry, start = self._start(request)
        try:
            if retry is None:
                response = self._attempt(transport, call)
            else:
                response = retry.call(self._attempt, transport, call)
        except Exception as exc:
            self._record(start, outcome_of_error(exc))
            raise
        self._record(start, outcome_of_status(response.status_code))
        return response

    def _attempt(self, transport: httpx.BaseTransport, call: _Call) -> httpx.Response:
        if self.breaker is None:
            return self._send(transport, call)
        return self.breaker.call(self._send, transport, call)

    def _send(self, transport: httpx.BaseTransport, call: _Call) -> httpx.Response:
        if self.limiter is not None:
            self.limiter.acquire("", 1, self._bound(call, self.policy.rate_limit_wait))
        response = transport.handle_request(self._prepared(call))
        if call.retrying and response.status_code in self._statuses:
            response.read()  # frees the connection before a retry
        return response

    # -- async ---------------------------------------------------------------------------------

    async def ahandle(
        self, transport: httpx.AsyncBaseTransport, request: httpx.Request
    ) -> httpx.Response:
        """Send ``request`` through ``transport`` under this host's policies."""
        call, retry, start = self._start(request)
        attempt = self._aattempt
        if (
            self.hedge is not None
            and request.method in _HEDGED_METHODS
            and isinstance(request.stream, httpx.ByteStream)
        ):
            attempt = self._ahedged
        try:
            if retry is None:
                response = await attempt(transport, call)
            else:
                response = await retry.acall(attempt, transport, call)
        except Exception as exc:
            self._record(start, outcome_of_error(exc))
            raise
        self._record(start, outcome_of_status(response.status_code))
        return response

    async def _aattempt(self, transport: httpx.AsyncBaseTransport, call: _Call) -> httpx.Response:
        if self.breaker is None:
            return await self._asend(transport, call)
        return await self.breaker.acall(self._asend, transport, call)

    async def _asend(self, transport: httpx.AsyncBaseTransport, call: _Call) -> httpx.Response:
        if self.limiter is not None:
            await self.limiter.aacquire("", 1, self._bound(call, self.policy.rate_limit_wait))
        response = await transport.handle_async_request(self._prepared(call))
        if call.retrying and response.status_code in self._statuses:
            await response.aread()
        return response

    async def _ahedged(self, transport: httpx.AsyncBaseTransport, call: _Call) -> httpx.Response:
        """Hedged attempts; a 5xx or retry-status answer starts the next one like an error.
        Every answer but the one returned is closed."""
        assert self.hedge is not None
        answers: list[httpx.Response] = []

        async def one() -> httpx.Response:
            response = await self._aattempt(transport, call)
            answers.append(response)
            status = response.status_code
            if status >= 500 or status in self._statuses:
                await response.aread()
                raise _Unaccepted(response)
            return response

        chosen: httpx.Response | None = None
        try:
            try:
                chosen = await self.hedge.acall(one)
            except _Unaccepted as exc:
                chosen = exc.response
            return chosen
        finally:
            for response in answers:
                if response is not chosen:
                    await response.aclose()

    # -- reading -------------------------------------------------------------------------------

    @property
    def retries(self) -> int:
        """Retries made for this host's requests."""
        return sum(r.retries for r in (self._full_retry, self._unsent_retry) if r is not None)

    def stats(self, thresholds: HealthThresholds) -> HostStats:
        """This host's statistics, graded by ``thresholds``."""
        state = self.breaker.state.value if self.breaker is not None else None
        return self.recorder.read(
            self.client,
            self.host,
            retries=self.retries,
            hedges=self.hedge.launched if self.hedge is not None else 0,
            breaker_state=state,
            thresholds=thresholds,
        )

    def describe(self) -> dict[str, Any]:
        """The host's policy and the policies built from it, as plain data."""
        return {
            "host": self.host,
            "policy": self.policy.describe(),
            "breaker": self.breaker.describe() if self.breaker is not None else None,
            "rate_limiter": self.limiter.describe() if self.limiter is not None else None,
            "retry": self._full_retry.describe() if self._full_retry is not None else None,
            "hedge": self.hedge.describe() if self.hedge is not None else None,
        }


def check_sync(policies: list[tuple[str, HostPolicy]]) -> None:
    """Refuse hedging on a sync transport: hedged attempts run concurrently on asyncio."""
    for pattern, policy in policies:
        if policy.hedge_delay is not None:
            raise ConfigError(
                f"policies[{pattern!r}].hedge_delay",
                policy.hedge_delay,
                "needs the async client (hedged attempts run concurrently on asyncio)",
            )
