"""``HostPolicy``: what the resilient transport does for one host, and the table of them.

A policy is a frozen dataclass validated at construction. ``PolicyTable`` holds the default
and the per-host overrides, keyed by a host pattern: ``"api.example.com"``, a host with a port
(``"127.0.0.1:8080"``), a wildcard (``"*.example.com"``, its subdomains) or ``"*"`` (the
default). Nothing here imports httpx.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import KW_ONLY, dataclass
from typing import Any

from buttress import _options
from buttress.errors import ConfigError
from buttress.ratelimit import Algorithm, SlidingWindowLog, parse_period
from buttress.retry import Backoff

__all__ = [
    "DEFAULT_BACKOFF",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "HostPolicy",
    "PolicyTable",
    "host_pattern",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods retried by default (RFC 9110, section 9.2.2). POST needs an ``Idempotency-Key``."""

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses retried by default: throttled, bad gateway, unavailable, gateway timeout."""

DEFAULT_BACKOFF = Backoff.exponential(base=0.2, cap=20.0, jitter="full")
"""Exponential from 0.2 s with full jitter; ``cap`` (20 s) is also the longest Retry-After
honoured: an answer asking for more is returned to the caller rather than retried early."""

_RATE = re.compile(r"^\s*(\d+)\s*(?:/|\bper\b)\s*(.+)$")
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"^(\*|(\*\.)?{_LABEL}(\.{_LABEL})*|\[[0-9a-f:.]+\])(?P<port>:\d{{1,5}})?$")


def _rate_limit(value: object) -> Algorithm | None:
    """None, an ``Algorithm``, or ``"<count>/<period>"`` as an exact sliding window log."""
    if value is None or isinstance(value, Algorithm):
        return value
    expected = (
        'must be None, text like "60/minute" (a whole number per period) or a '
        "buttress.ratelimit algorithm"
    )
    if not isinstance(value, str):
        raise ConfigError("rate_limit", value, expected)
    match = _RATE.match(value)
    if match is None or int(match[1]) < 1:
        raise ConfigError("rate_limit", value, expected)
    try:
        period = parse_period("rate_limit", match[2].strip())
    except ConfigError:
        raise ConfigError("rate_limit", value, expected) from None
    return SlidingWindowLog(int(match[1]), period)


def _methods(value: object) -> frozenset[str]:
    expected = "must be a set of HTTP method names like {'GET', 'PUT'}"
    if isinstance(value, str) or not isinstance(value, set | frozenset | list | tuple):
        raise ConfigError("retry_methods", value, expected)
    methods = set()
    for item in value:
        if not isinstance(item, str) or not item.isalpha():
            raise ConfigError("retry_methods", value, expected)
        methods.add(item.upper())
    return frozenset(methods)


def _statuses(value: object) -> frozenset[int]:
    expected = "must be a set of HTTP status codes in 100..599"
    if isinstance(value, str) or not isinstance(value, set | frozenset | list | tuple):
        raise ConfigError("retry_statuses", value, expected)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise ConfigError("retry_statuses", value, expected)
    return frozenset(value)


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The pipeline applied to the requests to one host; every field has a safe default.

    - ``timeout`` (10 s, None: httpx's own): each attempt's connect, read, write and pool
      timeouts, never longer than the time left in ``total_timeout``.
    - ``total_timeout`` (30 s, None: no bound): no new attempt starts after it.
    - ``attempts`` (3, 1 = no retry), ``backoff`` (``DEFAULT_BACKOFF``; its ``cap`` is the
      longest Retry-After honoured), ``retry_statuses`` ({429, 502, 503, 504}),
      ``retry_methods`` (GET, HEAD, OPTIONS, PUT, DELETE, TRACE; a request with an
      ``Idempotency-Key`` header is retried whatever its method). A request that never reached
      the server (connect error, connect or pool timeout) is retried whatever its method.
    - ``breaker`` (True): a circuit breaker per host; 5xx answers and transport errors are
      failures, 4xx are not. ``failure_rate`` (0.5) over the last ``window`` (50) calls, with
      at least ``minimum_calls`` (10), opens it for ``open_for`` (30 s).
    - ``rate_limit`` (None): ``"60/minute"`` (at most 60 requests in any 60 s) or an
      ``Algorithm``; a request waits up to ``rate_limit_wait`` (10 s) for its turn, else
      ``RateLimitedError``.
    - ``hedge_delay`` (None: off): for GET and HEAD on the async client, start another attempt
      when one has not answered after this long, up to ``max_hedged`` (1) extra attempts.
    """

    _: KW_ONLY
    timeout: float | None = 10.0
    total_timeout: float | None = 30.0
    attempts: int = 3
    backoff: Backoff = DEFAULT_BACKOFF
    retry_statuses: AbstractSet[int] = RETRY_STATUSES
    retry_methods: AbstractSet[str] = IDEMPOTENT_METHODS
    breaker: bool = True
    failure_rate: float = 0.5
    minimum_calls: int = 10
    window: int = 50
    open_for: float = 30.0
    rate_limit: Algorithm | str | None = None
    rate_limit_wait: float = 10.0
    hedge_delay: float | None = None
    max_hedged: int = 1

    def __post_init__(self) -> None:
        fix = object.__setattr__
        fix(self, "timeout", _options.optional_duration("timeout", self.timeout))
        fix(self, "total_timeout", _options.optional_duration("total_timeout", self.total_timeout))
        _options.integer("attempts", self.attempts, minimum=1)
        if not isinstance(self.backoff, Backoff):
            raise ConfigError(
                "backoff", self.backoff, "must be a Backoff, e.g. Backoff.exponential()"
            )
        fix(self, "retry_statuses", _statuses(self.retry_statuses))
        fix(self, "retry_methods", _methods(self.retry_methods))
        if not isinstance(self.breaker, bool):
            raise ConfigError("breaker", self.breaker, "must be True or False")
        fix(self, "failure_rate", _options.rate("failure_rate", self.failure_rate))
        _options.integer("minimum_calls", self.minimum_calls, minimum=1)
        _options.integer("window", self.window, minimum=1)
        fix(self, "open_for", _options.duration("open_for", self.open_for))
        fix(self, "rate_limit", _rate_limit(self.rate_limit))
        wait = _options.duration("rate_limit_wait", self.rate_limit_wait, allow_zero=True)
        fix(self, "rate_limit_wait", wait)
        hedge = _options.optional_duration("hedge_delay", self.hedge_delay, allow_zero=True)
        fix(self, "hedge_delay", hedge)
        _options.integer("max_hedged", self.max_hedged, minimum=1)

    def merged(self, overrides: Mapping[str, Any]) -> HostPolicy:
        """This policy with the fields named in ``overrides`` replaced (validated again)."""
        fields = HostPolicy.__dataclass_fields__
        for key in overrides:
            if key not in fields or key == "_":
                close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(str(key), overrides[key], f"is not a HostPolicy field{hint}")
        return dataclasses.replace(self, **overrides)

    def describe(self) -> dict[str, Any]:
        """The policy as plain data."""
        data = _options.options_dict(self)
        data["retry_statuses"] = sorted(self.retry_statuses)
        data["retry_methods"] = sorted(self.retry_methods)
        return data


def host_pattern(value: object) -> str:
    """A validated host pattern, lower-cased: a host, ``host:port``, ``*.suffix`` or ``*``."""
    expected = 'must be a host like "api.example.com", "host:8080", "*.example.com" or "*"'
    if not isinstance(value, str) or not value.isascii():
        raise ConfigError("host", value, expected + " (ASCII: IDNA-encode it)")
    pattern = value.strip().lower()
    match = _HOST.match(pattern)
    port = match["port"] if match else None
    if match is None or (port is not None and not 0 < int(port[1:]) < 65536):
        raise ConfigError("host", value, expected)
    return pattern


class PolicyTable:
    """The default policy and the overrides by host pattern; ``lookup(netloc)`` resolves one.

    Precedence: ``host:port``, then ``host``, then the longest matching ``*.suffix``, then the
    default (``"*"``).
    """

    __slots__ = ("default", "exact", "wildcards")

    def __init__(self, policies: HostPolicy | Mapping[str, Any] | None) -> None:
        self.exact: dict[str, HostPolicy] = {}
        self.wildcards: list[tuple[str, HostPolicy]] = []
        if policies is None or isinstance(policies, HostPolicy):
            self.default = policies or HostPolicy()
            return
        if not isinstance(policies, Mapping):
            raise ConfigError(
                "policies", policies, "must be a HostPolicy or a mapping of host -> HostPolicy/dict"
            )
        self.default = self._build("*", policies.get("*"), HostPolicy())
        for raw, value in policies.items():
            pattern = host_pattern(raw)
            if pattern == "*":
                continue
            policy = self._build(pattern, value, self.default)
            if pattern.startswith("*."):
                self.wildcards.append((pattern[1:], policy))  # ".example.com"
            elif pattern in self.exact:
                raise ConfigError(f"policies[{raw!r}]", raw, "names a host given twice")
            else:
                self.exact[pattern] = policy
        self.wildcards.sort(key=lambda item: -len(item[0]))

    @staticmethod
    def _build(pattern: str, value: object, base: HostPolicy) -> HostPolicy:
        if value is None:
            return base
        if isinstance(value, HostPolicy):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"policies[{pattern!r}]", value, "must be a HostPolicy or a dict")
        try:
            return base.merged(value)
        except ConfigError as exc:
            raise ConfigError(
                f"policies[{pattern!r}].{exc.field}", exc.value, exc.expected
            ) from None
        except TypeError as exc:  # dataclasses.replace on a field it cannot set
            raise ConfigError(f"policies[{pattern!r}]", value, str(exc)) from None

    def lookup(self, netloc: str) -> tuple[HostPolicy, bool]:
        """The policy for ``netloc`` (``host`` or ``host:port``), and whether it was configured
        for this host explicitly (not the default)."""
        exact = self.exact
        if exact:
            found = exact.get(netloc)
            if found is not None:
                return found, True
            host = _strip_port(netloc)
            if host != netloc and (found := exact.get(host)) is not None:
                return found, True
        if self.wildcards:
            host = _strip_port(netloc)
            for suffix, policy in self.wildcards:
                if host.endswith(suffix):
                    return policy, True
        return self.default, False

    def named(self) -> list[tuple[str, HostPolicy]]:
        """Every ``(pattern, policy)`` of the table: the default (``"*"``) first."""
        wildcards = [(f"*{suffix}", policy) for suffix, policy in self.wildcards]
        return [("*", self.default), *self.exact.items(), *wildcards]

    def describe(self) -> dict[str, Any]:
        """The default and the overrides as plain data."""
        overrides = {pattern: p.describe() for pattern, p in self.exact.items()}
        overrides.update({f"*{suffix}": p.describe() for suffix, p in self.wildcards})
        return {"default": self.default.describe(), "hosts": overrides}


def _strip_port(netloc: str) -> str:
    if netloc.endswith("]"):  # [::1] without a port
        return netloc
    head, sep, tail = netloc.rpartition(":")
    return head if sep and tail.isdigit() else netloc
