"""Classification: rules over exception types and HTTP statuses, first match wins.

A ``Rule`` names a ``Classification`` and what it matches: exception types or a predicate
(``on``), HTTP statuses (``status``: read from ``error.status_code`` or
``error.response.status_code``), or both (then both must match). A ``Classifier`` tries the
user's rules, then the defaults (``DEFAULT_RULES``), then falls back to ``unknown``. It also
reads the ``retry_after`` hint an error carries (an attribute, or a 429/503 ``Retry-After``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from buttress._options import ExceptionSpec, exception_filter
from buttress.dlq._records import Classification
from buttress.errors import ConfigError, RateLimitedError, RejectedError, StoreError
from buttress.retry._hints import HINT_STATUSES, error_hint, parse_retry_after

__all__ = ["DEFAULT_RULES", "Classifier", "Rule", "http_status"]


def http_status(error: BaseException) -> int | None:
    """The HTTP status an error carries (``status_code`` or ``response.status_code``), or None."""
    for holder in (error, getattr(error, "response", None)):
        try:
            value = getattr(holder, "status_code", None)
        except Exception:  # a broken property is no status
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _statuses(value: object) -> frozenset[int]:
    items: Iterable[object] = (value,) if isinstance(value, int) else value  # type: ignore[assignment]
    try:
        codes = frozenset(items)
    except TypeError:
        raise ConfigError(
            "status", value, "must be an HTTP status, a range or a set of them"
        ) from None
    checked = frozenset(
        c for c in codes if isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599
    )
    if not codes or len(checked) != len(codes):
        raise ConfigError("status", value, "must hold HTTP statuses (100..599)")
    return checked


@dataclass(frozen=True, slots=True)
class Rule:
    """``Rule(classification, on=None, status=None)``: errors matching ``on`` (an exception
    type, a tuple of them, or a predicate) and carrying one of ``status`` (an int, a range or a
    set of HTTP statuses) are classified ``classification``. Give ``on``, ``status`` or both."""

    classification: Classification | str
    on: ExceptionSpec | None = None
    status: int | Iterable[int] | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "classification", Classification(self.classification))
        except ValueError:
            allowed = ", ".join(c.value for c in Classification)
            raise ConfigError(
                "classification", self.classification, f"must be one of {allowed}"
            ) from None
        if self.on is None and self.status is None:
            raise ConfigError("on", None, "a Rule needs on=, status= or both")
        if self.on is not None:
            exception_filter("on", self.on)
        if self.status is not None:
            object.__setattr__(self, "status", _statuses(self.status))

    def compile(self) -> Callable[[BaseException, int | None], bool]:
        """A test ``(error, status) -> bool``."""
        test = None if self.on is None else exception_filter("on", self.on)
        codes = self.status if isinstance(self.status, frozenset) else None

        def matches(error: BaseException, status: int | None) -> bool:
            if codes is not None and status not in codes:
                return False
            return test is None or test(error)

        return matches

    @property
    def by_type(self) -> bool:
        """Whether the rule looks only at the error's type and status (its result can be
        remembered per type and status)."""
        return self.on is None or isinstance(self.on, type | tuple)


def _httpx_transport(error: BaseException) -> bool:
    # httpx is never imported here: its errors can only exist once someone imported it.
    return any(
        cls.__name__ == "TransportError" and cls.__module__.startswith("httpx")
        for cls in type(error).__mro__
    )


T, RL, TO, P, X = (
    Classification.TRANSIENT,
    Classification.RATE_LIMITED,
    Classification.TIMEOUT,
    Classification.PERMANENT,
    Classification.POISON,
)
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(X, on=(UnicodeError, json.JSONDecodeError)),
    Rule(RL, status=429),
    Rule(TO, status=(408, 504)),
    Rule(P, status=(501, 505)),
    Rule(T, status=range(500, 600)),
    Rule(P, status=range(400, 500)),
    Rule(RL, on=RateLimitedError),
    Rule(TO, on=TimeoutError),
    Rule(T, on=(ConnectionError, RejectedError, StoreError)),
    Rule(T, on=_httpx_transport),
    Rule(P, on=(TypeError, ValueError, LookupError, AttributeError, NotImplementedError)),
    Rule(P, on=AssertionError),
)
"""The built-in rules, tried after the user's: decode errors are poison; HTTP 429 rate limited,
408/504 timeout, 501/505 permanent, other 5xx transient, other 4xx permanent; then by type:
``RateLimitedError`` rate limited, ``TimeoutError`` timeout, ``ConnectionError``, rejections,
``StoreError`` and httpx transport errors transient, and programming or data errors (``TypeError``,
``ValueError``, ``LookupError``, ``AttributeError``, ``NotImplementedError``,
``AssertionError``) permanent."""


class Classifier:
    """``Classifier(rules=(), *, defaults=True, fallback="unknown")``: the first matching rule
    of ``rules``, then of ``DEFAULT_RULES`` (unless ``defaults=False``), decides."""

    __slots__ = ("_known", "_tests", "fallback", "rules")

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        defaults: bool = True,
        fallback: Classification | str = Classification.UNKNOWN,
    ) -> None:
        rules = tuple(rules)
        for index, rule in enumerate(rules):
            if not isinstance(rule, Rule):
                raise ConfigError(f"rules[{index}]", rule, "must be a Rule")
        self.rules = rules + (DEFAULT_RULES if defaults else ())
        try:
            self.fallback = Classification(fallback)
        except ValueError:
            raise ConfigError("fallback", fallback, "must be a Classification") from None
        self._tests = tuple(
            (rule.compile(), Classification(rule.classification), rule.by_type)
            for rule in self.rules
        )
        # (type, status) -> class, for errors decided before any predicate rule was asked.
        self._known: dict[tuple[type, int | None], Classification] = {}

    def classify(self, error: BaseException) -> Classification:
        """The classification of ``error``."""
        return self._classify(error, http_status(error))

    def assess(
        self, error: BaseException, wall: Callable[[], float]
    ) -> tuple[Classification, float | None]:
        """``classify`` and ``retry_after`` together (the error's status is read once)."""
        status = http_status(error)
        return self._classify(error, status), _hint(error, status, wall)

    def _classify(self, error: BaseException, status: int | None) -> Classification:
        key = (type(error), status)
        known = self._known.get(key)
        if known is not None:
            return known
        by_type, result = True, self.fallback
        for test, classification, plain in self._tests:
            by_type = by_type and plain
            try:
                if test(error, status):
                    result = classification
                    break
            except Exception:  # a broken predicate must not lose the dead letter
                continue
        if by_type:
            if len(self._known) >= 512:
                self._known.clear()
            self._known[key] = result
        return result

    @staticmethod
    def retry_after(error: BaseException, wall: Callable[[], float]) -> float | None:
        """Seconds the error asks to wait: ``retry_after``, or a 429/503 ``Retry-After``."""
        return _hint(error, http_status(error), wall)

    def describe(self) -> list[dict[str, Any]]:
        """The rules in order as plain data."""
        out = []
        for rule in self.rules:
            on = rule.on
            if isinstance(on, type):
                shown: Any = on.__qualname__
            elif isinstance(on, tuple):
                shown = [t.__qualname__ for t in on]
            else:
                shown = None if on is None else getattr(on, "__qualname__", repr(on))
            status = sorted(rule.status) if isinstance(rule.status, frozenset) else None
            out.append({"classification": str(rule.classification), "on": shown, "status": status})
        return out


def _hint(error: BaseException, status: int | None, wall: Callable[[], float]) -> float | None:
    hint = error_hint(error, wall)
    if hint is not None:
        return hint
    if status not in HINT_STATUSES:
        return None
    headers = getattr(getattr(error, "response", None), "headers", None)
    try:
        value = headers.get("Retry-After") if headers is not None else None
    except Exception:
        return None
    return parse_retry_after(value, wall) if isinstance(value, str) else None
