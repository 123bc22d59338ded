"""The health check graded from the clients' per-host statistics."""

from __future__ import annotations

import httpx
import pytest

from buttress import Registry
from buttress.errors import ConfigError
from buttress.health import CheckResult, HealthRegistry, Status
from buttress.http import Client, HealthThresholds, HostPolicy, health_check, wrap
from buttress.testing import ManualClock

ONCE = HostPolicy(attempts=1, minimum_calls=5, window=5)


def client_answering(registry: Registry, statuses: list[int], **options) -> Client:
    answers = iter(statuses)
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers)))
    return Client(registry=registry, transport=transport, **options)


async def run(check) -> CheckResult:
    result = await check.fn()
    assert isinstance(result, CheckResult)
    return result


async def test_no_requests_yet_passes() -> None:
    """A client that sent nothing is healthy, with no observed value."""
    registry = Registry()
    client_answering(registry, [], name="idle").close()
    result = await run(health_check(registry))
    assert (result.status, result.output, result.observed_value) == (
        Status.PASS,
        "no requests yet",
        None,
    )


async def test_healthy_hosts_pass_with_their_success_rate() -> None:
    """Successful requests pass; observed value is the lowest recent success rate in percent."""
    registry = Registry()
    with client_answering(registry, [200] * 12, name="api", policies=ONCE) as client:
        for _ in range(12):
            client.get("https://a.example/")
    result = await run(health_check(registry))
    assert result.status is Status.PASS
    assert (result.observed_value, result.observed_unit) == (100.0, "percent")
    assert result.details["hosts"]["api/a.example"]["requests"] == 12


async def test_a_failing_host_fails_the_check_with_the_reason() -> None:
    """A host whose breaker opened fails the check; the output names client, host and why."""
    registry = Registry()
    clock = ManualClock()
    with client_answering(registry, [500] * 5, name="pay", policies=ONCE, clock=clock) as client:
        for _ in range(5):
            client.get("https://pay.example/")
    result = await run(health_check(registry))
    assert result.status is Status.FAIL
    assert "pay/pay.example fail: circuit breaker open" in result.output
    assert result.observed_value == 0.0
    assert result.details["hosts"]["pay/pay.example"]["breaker"] == "open"


async def test_thresholds_of_the_client_grade_its_hosts() -> None:
    """A client's HealthThresholds decide: 80 % success warns under warn_below=0.9."""
    registry = Registry()
    health = HealthThresholds(min_requests=5, warn_below=0.9, fail_below=0.5)
    statuses = [200, 200, 200, 200, 503]
    policy = HostPolicy(attempts=1, breaker=False)
    with client_answering(registry, statuses, name="x", policies=policy, health=health) as client:
        for _ in statuses:
            client.get("https://x.example/")
    result = await run(health_check(registry))
    assert result.status is Status.WARN
    assert "success rate 80.0% over the last 5 requests" in result.output


async def test_the_check_is_not_critical_by_default() -> None:
    """In a health registry, a failing http check makes readiness warn, not fail."""
    registry = Registry()
    with client_answering(registry, [500] * 5, name="pay", policies=ONCE) as client:
        for _ in range(5):
            client.get("https://pay.example/")
    check = health_check(registry)
    assert check.critical is False
    health = HealthRegistry()
    health.add(check)
    report = await health.run("readiness")
    assert report.status is Status.WARN
    assert health_check(registry, critical=True).critical is True


async def test_one_client_can_be_checked_alone() -> None:
    """health_check accepts a client (built or wrapped) or its ClientResilience."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as plain:
        resilience = wrap(plain)
        plain.get("https://one.example/")
        for source in (plain, resilience):
            result = await run(health_check(source, name="one"))
            assert result.status is Status.PASS
            assert "one/one.example" not in result.output
            assert list(result.details["hosts"]) == ["http/one.example"]


def test_a_bad_source_is_refused() -> None:
    """Anything but a registry, a client or a ClientResilience is refused at construction."""
    with pytest.raises(ConfigError) as caught:
        health_check("registry")  # type: ignore[arg-type]
    assert caught.value.field == "source"
