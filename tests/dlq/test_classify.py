"""Classification: the default rules, HTTP statuses, user rules first, retry_after hints."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import CircuitOpenError, ConfigError, RateLimitedError
from buttress.dlq import Classification, Classifier, Rule, http_status
from buttress.errors import StoreError


class HTTPError(Exception):
    """An error carrying a status like requests' and httpx's do."""

    def __init__(self, status: int, *, on_response: bool = False, headers: dict | None = None):
        super().__init__(f"HTTP {status}")
        if on_response:
            self.response = SimpleNamespace(status_code=status, headers=headers or {})
        else:
            self.status_code = status


DEFAULTS = Classifier()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionError("refused"), "transient"),
        (CircuitOpenError("db"), "transient"),
        (StoreError("down"), "transient"),
        (TimeoutError("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (RateLimitedError("api", retry_after=3), "rate_limited"),
        (json.JSONDecodeError("bad", "{", 0), "poison"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "poison"),
        (ValueError("bad"), "permanent"),
        (KeyError("sku"), "permanent"),
        (TypeError("nope"), "permanent"),
        (RuntimeError("who knows"), "unknown"),
        (HTTPError(429), "rate_limited"),
        (HTTPError(503), "transient"),
        (HTTPError(500, on_response=True), "transient"),
        (HTTPError(504), "timeout"),
        (HTTPError(408), "timeout"),
        (HTTPError(404), "permanent"),
        (HTTPError(422, on_response=True), "permanent"),
        (HTTPError(501), "permanent"),
    ],
    ids=repr,
)
def test_default_rules(error: BaseException, expected: str) -> None:
    """Each kind of error gets the documented default classification."""
    assert DEFAULTS.classify(error) == Classification(expected)


def test_user_rules_come_first() -> None:
    """A user's rule wins over the defaults; status and type together must both match."""
    classifier = Classifier(
        [
            Rule("transient", status=404, on=HTTPError),
            Rule("poison", on=lambda e: "corrupt" in str(e)),
            Rule(Classification.PERMANENT, on=ConnectionError),
        ]
    )
    assert classifier.classify(HTTPError(404)) is Classification.TRANSIENT
    assert classifier.classify(HTTPError(403)) is Classification.PERMANENT
    assert classifier.classify(RuntimeError("corrupt frame")) is Classification.POISON
    assert classifier.classify(ConnectionError()) is Classification.PERMANENT


def test_without_defaults_and_with_a_fallback() -> None:
    """defaults=False leaves only the user's rules; unmatched errors get the fallback."""
    classifier = Classifier(
        [Rule("timeout", on=TimeoutError)], defaults=False, fallback="transient"
    )
    assert classifier.classify(ValueError()) is Classification.TRANSIENT
    assert classifier.classify(TimeoutError()) is Classification.TIMEOUT


def test_a_broken_predicate_is_skipped() -> None:
    """A rule whose predicate raises does not lose the error: the next rule decides."""

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("bug in a rule")

    assert Classifier([Rule("poison", on=broken)]).classify(ConnectionError()) == "transient"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"classification": "flaky", "on": ValueError}, "classification"),
        ({"classification": "transient"}, "on"),
        ({"classification": "transient", "status": 99}, "status"),
        ({"classification": "transient", "status": "500"}, "status"),
        ({"classification": "transient", "on": 42}, "on"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict, field: str) -> None:
    """A rule with a bad value raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Rule(**kwargs)
    assert info.value.field == field


def test_bad_classifier_options() -> None:
    """Rules must be Rule objects and the fallback a classification."""
    with pytest.raises(ConfigError, match=r"rules\[0\]"):
        Classifier([ValueError])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="fallback"):
        Classifier(fallback="meh")


def test_http_status_reading() -> None:
    """The status comes from status_code, then response.status_code; junk is ignored."""
    assert http_status(HTTPError(418)) == 418
    assert http_status(HTTPError(502, on_response=True)) == 502
    junk = ValueError()
    junk.status_code = "500"  # type: ignore[attr-defined]
    assert http_status(junk) is None
    assert http_status(ValueError()) is None


def test_retry_after_hints() -> None:
    """retry_after comes from the attribute, or from a 429/503 Retry-After header."""
    wall = lambda: 1_700_000_000.0  # noqa: E731
    assert Classifier.retry_after(RateLimitedError("api", retry_after=7), wall) == 7
    header = HTTPError(429, on_response=True, headers={"Retry-After": "12"})
    assert Classifier.retry_after(header, wall) == 12
    ignored = HTTPError(500, on_response=True, headers={"Retry-After": "12"})
    assert Classifier.retry_after(ignored, wall) is None
    assert Classifier.retry_after(ConnectionError(), wall) is None


@given(st.integers(min_value=100, max_value=599))
def test_every_status_has_a_sensible_class(status: int) -> None:
    """Any HTTP status classifies; 5xx are never permanent except 501/505, 4xx never
    transient, and 429 is always rate limited."""
    kind = DEFAULTS.classify(HTTPError(status))
    if status == 429:
        assert kind is Classification.RATE_LIMITED
    elif 500 <= status <= 599:
        assert (kind is Classification.PERMANENT) == (status in (501, 505))
    elif 400 <= status <= 499:
        assert kind in (Classification.PERMANENT, Classification.TIMEOUT)
    else:
        assert kind is Classification.UNKNOWN


def test_describe_lists_the_rules() -> None:
    """describe() shows the user's rules, then the defaults, as plain data."""
    described = Classifier([Rule("poison", on=(KeyError, IndexError), status=400)]).describe()
    assert described[0] == {
        "classification": "poison",
        "on": ["KeyError", "IndexError"],
        "status": [400],
    }
    assert len(described) == 1 + len(DEFAULTS.rules)


def test_remembered_classes_stay_right() -> None:
    """Classes remembered per error type and status never hide a predicate's say."""
    classifier = Classifier([Rule("poison", on=lambda e: "corrupt" in str(e))])
    for _ in range(2):
        assert classifier.classify(RuntimeError("fine")) is Classification.UNKNOWN
        assert classifier.classify(RuntimeError("corrupt frame")) is Classification.POISON
        assert classifier.classify(HTTPError(503)) is Classification.TRANSIENT
        assert classifier.classify(HTTPError(404)) is Classification.PERMANENT
    plain = Classifier([Rule("timeout", status=503)])
    for _ in range(2):
        assert plain.classify(HTTPError(503)) is Classification.TIMEOUT
        assert plain.classify(HTTPError(502)) is Classification.TRANSIENT
