"""HTTP and TCP checks against real local servers."""

from __future__ import annotations

import httpx
import pytest

from buttress.errors import ConfigError
from buttress.health import Status
from buttress.health.checks import http_check, tcp_check
from tests.servers import SLOW_SECONDS, HttpServer, full_backlog_port

from .conftest import Runner

TOKEN = "tok-very-secret-123"


# -- HTTP ---------------------------------------------------------------------------------------


async def test_http_passes_on_the_expected_status(run: Runner, http_server: HttpServer):
    """200 passes with latency in ms and the status code in details."""
    check = http_check("api", http_server.url("/ok"))
    result = await run(check)
    assert result.status is Status.PASS, result.output
    assert result.observed_unit == "ms"
    assert result.observed_value > 0
    assert result.details["status_code"] == 200
    assert result.details["http_version"] == "HTTP/1.1"
    assert check.key == "api:responseTime"
    assert check.component_type == "component"


async def test_http_unexpected_status_fails(run: Runner, http_server: HttpServer):
    """A 500 where 200 is expected fails and says what came back."""
    result = await run(http_check("api", http_server.url("/error")))
    assert result.status is Status.FAIL
    assert "returned 500, expected 200" in result.output
    assert result.details["status_code"] == 500


async def test_http_expected_status_may_be_several(run: Runner, http_server: HttpServer):
    """A collection of statuses accepts any of them; a single other status can be expected."""
    created = await run(http_check("api", http_server.url("/created"), expected_status=[200, 201]))
    error = await run(http_check("api", http_server.url("/error"), expected_status=500))
    assert created.status is Status.PASS
    assert error.status is Status.PASS


async def test_http_redirects_are_not_followed_unless_asked(run: Runner, http_server: HttpServer):
    """A 302 fails by default and passes with follow_redirects=True."""
    plain = await run(http_check("api", http_server.url("/redirect")))
    followed = await run(http_check("api", http_server.url("/redirect"), follow_redirects=True))
    assert plain.status is Status.FAIL
    assert plain.details["status_code"] == 302
    assert followed.status is Status.PASS


async def test_http_method_and_headers_are_sent(run: Runner, http_server: HttpServer):
    """The method and headers reach the server."""
    check = http_check(
        "api", http_server.url("/ok"), method="head", headers={"X-Probe": "buttress"}
    )
    result = await run(check)
    assert result.status is Status.PASS
    method, path, headers = http_server.requests[-1]
    assert (method, path, headers["X-Probe"]) == ("HEAD", "/ok", "buttress")


async def test_http_slow_answer_warns_or_fails_by_threshold(run: Runner, http_server: HttpServer):
    """Latency above warn_above warns; above fail_above fails."""
    slow_ms = SLOW_SECONDS * 1000
    warned = await run(http_check("api", http_server.url("/slow"), warn_above=slow_ms / 2))
    failed = await run(
        http_check("api", http_server.url("/slow"), warn_above=1, fail_above=slow_ms / 2)
    )
    assert warned.status is Status.WARN
    assert warned.observed_value >= slow_ms
    assert failed.status is Status.FAIL
    assert "above 30 ms" in failed.output


async def test_http_refused_fails(run: Runner, stopped_port: int):
    """Nothing listening: fail with 'connection refused'."""
    result = await run(http_check("api", f"http://127.0.0.1:{stopped_port}/health"))
    assert result.status is Status.FAIL
    assert result.output.endswith(": connection refused")


async def test_http_timeout_fails(run: Runner, silent_port: int):
    """A server that accepts and never answers fails at the timeout."""
    result = await run(http_check("api", f"http://127.0.0.1:{silent_port}/", timeout=0.1))
    assert result.status is Status.FAIL
    assert result.output.endswith("timed out after 0.1s")


async def test_http_secrets_stay_out_of_output(run: Runner, http_server: HttpServer):
    """URL passwords, token parameters and secret headers never show in output or details."""
    url = f"http://user:{TOKEN}@127.0.0.1:{http_server.port}/error?token={TOKEN}"
    result = await run(http_check("api", url, headers={"Authorization": f"Bearer {TOKEN}"}))
    assert result.status is Status.FAIL
    assert TOKEN not in result.output
    assert TOKEN not in repr(result.details)


async def test_http_with_a_given_client(run: Runner, http_server: HttpServer):
    """A given httpx.AsyncClient is used and left open."""
    async with httpx.AsyncClient() as client:
        result = await run(http_check("api", http_server.url("/ok"), client=client))
        assert result.status is Status.PASS
        assert not client.is_closed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://example.org"}, "url"),
        ({"url": 5}, "url"),
        ({"expected_status": 99}, "expected_status"),
        ({"expected_status": []}, "expected_status"),
        ({"expected_status": "200"}, "expected_status"),
        ({"expected_status": True}, "expected_status"),
        ({"method": "BREW"}, "method"),
        ({"headers": {"X": 1}}, "headers"),
        ({"follow_redirects": "yes"}, "follow_redirects"),
        ({"fail_above": -5}, "fail_above"),
        ({"groups": ["liveness"]}, "groups"),
        ({"critical": "no"}, "critical"),
    ],
)
def test_http_options_are_validated(kwargs, field):
    """Bad options raise ConfigError naming the field."""
    options = {"url": "http://127.0.0.1/", **kwargs}
    with pytest.raises(ConfigError) as info:
        http_check("api", **options)
    assert info.value.field == field


# -- TCP ----------------------------------------------------------------------------------------


async def test_tcp_connects_and_reports_latency(run: Runner, http_server: HttpServer):
    """A listening port passes, with connect latency in ms and the peer."""
    check = tcp_check("api-port", "127.0.0.1", http_server.port)
    result = await run(check)
    assert result.status is Status.PASS, result.output
    assert result.observed_unit == "ms"
    assert result.observed_value > 0
    assert result.details["peer"] == f"127.0.0.1:{http_server.port}"
    assert check.key == "api-port:responseTime"


async def test_tcp_refused_fails(run: Runner, stopped_port: int):
    """A stopped port fails with 'connection refused'."""
    result = await run(tcp_check("gone", "127.0.0.1", stopped_port))
    assert result.status is Status.FAIL
    assert result.output == f"127.0.0.1:{stopped_port}: connection refused"


async def test_tcp_connect_timeout_fails(run: Runner):
    """A port whose listen queue is full never completes the handshake: fail at the timeout."""
    with full_backlog_port() as port:
        result = await run(tcp_check("stuck", "127.0.0.1", port, timeout=0.1))
    assert result.status is Status.FAIL
    assert result.output.endswith("timed out after 0.1s")


async def test_tcp_latency_thresholds(run: Runner, http_server: HttpServer):
    """Latency above warn_above warns; above fail_above fails."""
    warned = await run(tcp_check("p", "127.0.0.1", http_server.port, warn_above=0))
    failed = await run(tcp_check("p", "127.0.0.1", http_server.port, fail_above=0))
    assert warned.status is Status.WARN
    assert failed.status is Status.FAIL


@pytest.mark.parametrize(
    ("host", "port", "field"),
    [("", 80, "host"), ("h", 0, "port"), ("h", 70000, "port"), ("h", "80", "port")],
)
def test_tcp_options_are_validated(host, port, field):
    """Bad host or port raise ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        tcp_check("t", host, port)
    assert info.value.field == field
