"""Host policies: validation at construction, and which policy a host gets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.errors import ConfigError
from buttress.http import (
    RETRY_STATUSES,
    AsyncClient,
    Client,
    ClientResilience,
    HealthThresholds,
    HostPolicy,
)
from buttress.http._policy import PolicyTable, host_pattern
from buttress.ratelimit import SlidingWindowLog, TokenBucket
from buttress.retry import Backoff
from buttress.testing import ManualClock


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", 0),
        ("total_timeout", -1),
        ("attempts", 0),
        ("backoff", "exponential"),
        ("retry_statuses", {99}),
        ("retry_statuses", "503"),
        ("retry_methods", "GET"),
        ("retry_methods", {"G E T"}),
        ("breaker", "yes"),
        ("failure_rate", 1.5),
        ("minimum_calls", 0),
        ("window", 0),
        ("open_for", 0),
        ("rate_limit", "lots"),
        ("rate_limit", "1.5/minute"),
        ("rate_limit", "60/fortnight"),
        ("rate_limit", 60),
        ("rate_limit_wait", -1),
        ("hedge_delay", -0.5),
        ("max_hedged", 0),
    ],
)
def test_a_bad_value_is_refused_naming_field_and_value(field: str, value: Any) -> None:
    """Each invalid option raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError) as caught:
        HostPolicy(**{field: value})
    assert caught.value.field == field
    assert caught.value.value == value


def test_a_rate_limit_text_is_an_exact_sliding_window() -> None:
    """ "60/minute" becomes a sliding window log of 60 per 60 s; an algorithm is kept as is."""
    limit = HostPolicy(rate_limit="60/minute").rate_limit
    assert isinstance(limit, SlidingWindowLog)
    assert (limit.limit, limit.period) == (60, 60.0)
    assert HostPolicy(rate_limit="5 per 2 hours").rate_limit.period == 7200.0  # type: ignore[union-attr]
    bucket = TokenBucket(10, burst=5)
    assert HostPolicy(rate_limit=bucket).rate_limit is bucket


def test_methods_are_upper_cased_and_statuses_kept() -> None:
    """retry_methods accept any case; both sets are frozen."""
    policy = HostPolicy(retry_methods={"get", "Post"}, retry_statuses={500, 503})
    assert policy.retry_methods == frozenset({"GET", "POST"})
    assert policy.retry_statuses == frozenset({500, 503})


def test_overrides_merge_onto_the_default() -> None:
    """A dict for a host changes only the fields it names; the rest come from "*"."""
    table = PolicyTable({"*": HostPolicy(timeout=3), "api.example.com": {"attempts": 5}})
    policy, explicit = table.lookup("api.example.com")
    assert (policy.timeout, policy.attempts, explicit) == (3.0, 5, True)
    assert table.lookup("other.example.com") == (table.default, False)


def test_a_misspelt_override_is_refused_with_a_hint() -> None:
    """An unknown key names the host, the key, and the field it resembles."""
    with pytest.raises(ConfigError) as caught:
        Client(policies={"api.example.com": {"timout": 3}})
    assert caught.value.field == "policies['api.example.com'].timout"
    assert "did you mean 'timeout'" in str(caught.value)


def test_a_bad_override_value_names_its_host() -> None:
    """A bad value in a host's dict is reported with the host's path."""
    with pytest.raises(ConfigError) as caught:
        AsyncClient(policies={"*.example.com": {"rate_limit": "often"}})
    assert caught.value.field == "policies['*.example.com'].rate_limit"
    assert caught.value.value == "often"


@pytest.mark.parametrize(
    "bad",
    ["", "http://example.com", "exa mple.com", "bücher.de", "host:0", "host:70000", "a.*.com"],
)
def test_a_bad_host_pattern_is_refused(bad: str) -> None:
    """Host patterns are hosts, host:port, *.suffix or *; anything else is refused."""
    with pytest.raises(ConfigError) as caught:
        ClientResilience({bad: HostPolicy()})
    assert caught.value.field == "host"


def test_patterns_are_case_insensitive() -> None:
    """A pattern is lower-cased, as httpx lower-cases hosts."""
    assert host_pattern("API.Example.COM:8443") == "api.example.com:8443"
    assert host_pattern("[::1]:8080") == "[::1]:8080"


def test_other_options_are_validated() -> None:
    """The client's own options are checked too: name, window, max_hosts, health, policies."""
    for kwargs, field in [
        ({"name": ""}, "name"),
        ({"window": 0}, "window"),
        ({"max_hosts": 0}, "max_hosts"),
        ({"health": {"warn_below": 0.9}}, "health"),
        ({"policies": ["api.example.com"]}, "policies"),
    ]:
        with pytest.raises(ConfigError) as caught:
            ClientResilience(**kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_health_thresholds_are_validated() -> None:
    """Rates are in [0, 1], fail below warn, latency thresholds ordered."""
    for kwargs, field in [
        ({"warn_below": 1.5}, "warn_below"),
        ({"warn_below": 0.5, "fail_below": 0.9}, "fail_below"),
        ({"min_requests": 0}, "min_requests"),
        ({"warn_p99_above": 2, "fail_p99_above": 1}, "fail_p99_above"),
        ({"warn_p99_above": -1}, "warn_p99_above"),
    ]:
        with pytest.raises(ConfigError) as caught:
            HealthThresholds(**kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field


LABEL = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
HOSTS = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
PORTS = st.one_of(st.none(), st.integers(1, 65535))


@given(HOSTS, PORTS, st.lists(HOSTS, max_size=4), st.lists(HOSTS, max_size=4))
def test_lookup_follows_the_precedence_rules(
    host: str, port: int | None, exact: list[str], suffixes: list[str]
) -> None:
    """host:port beats host, host beats the longest matching *.suffix, which beats "*"."""
    netloc = host if port is None else f"{host}:{port}"
    policies: dict[str, Any] = {"*": HostPolicy(attempts=1)}
    for index, name in enumerate(dict.fromkeys(exact)):
        policies[name] = {"attempts": 10 + index}
    for index, suffix in enumerate(dict.fromkeys(suffixes)):
        policies[f"*.{suffix}"] = {"attempts": 100 + index}
    table = PolicyTable(policies)
    policy, explicit = table.lookup(netloc)
    if netloc in policies and netloc != "*":
        expected = policies[netloc]["attempts"]
    elif host in policies:
        expected = policies[host]["attempts"]
    else:
        matches = [s for s in dict.fromkeys(suffixes) if host.endswith("." + s)]
        if matches:
            longest = max(matches, key=len)
            expected = policies[f"*.{longest}"]["attempts"]
        else:
            expected = 1
    assert policy.attempts == expected
    assert explicit == (expected != 1)


STATUSES = st.sampled_from([200, 201, 404, 429, 500, 502, 503, 504])


@given(
    st.lists(STATUSES, min_size=1, max_size=6),
    st.integers(1, 6),
    st.sampled_from(["GET", "PUT", "POST"]),
)
def test_retries_stop_at_the_first_final_answer(
    statuses: list[int], attempts: int, method: str
) -> None:
    """An idempotent request is sent until an answer is not a retry status or the attempts run
    out; a POST is sent once; the caller gets the last answer and the stats agree."""
    script = iter(statuses + [200] * attempts)
    hits: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(status := next(script))
        return httpx.Response(status)

    policy = HostPolicy(attempts=attempts, backoff=Backoff.constant(0), breaker=False)
    clock = ManualClock()
    with Client(policies=policy, transport=httpx.MockTransport(handler), clock=clock) as client:
        response = client.request(method, "https://api.example.com/")
        stats = client.snapshot()[0]
    expected = 1
    if method != "POST":
        while expected < attempts and hits[expected - 1] in RETRY_STATUSES:
            expected += 1
    assert len(hits) == expected
    assert response.status_code == hits[-1]
    assert (stats.requests, stats.attempts, stats.retries) == (1, expected, expected - 1)
