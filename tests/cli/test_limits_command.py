"""``buttress limits``: the configured limiters, shedders and queues, or a running server's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import Registry
from buttress.cli import main
from buttress.cli._limits import _per, _span
from buttress.errors import LoadShedError
from buttress.ops import create_app
from buttress.ratelimit import (
    ConcurrencyLimiter,
    FixedWindow,
    TokenBucket,
    parse_period,
    parse_rate,
)
from tests.ops.conftest import TOKENS, VIEWER
from tests.servers import ops_server, stopped_port

CONFIG = """
[limits.partner]
algorithm = "gcra"
rate = "100/minute"
burst = 10

[limits.clients]
algorithm = "sliding_window_counter"
limit = 1000
window = "1 hour"
keyed = true

[concurrency.db]
max = 20

[concurrency.api]
algorithm = "aimd"
max_limit = 50

[throttles.search]
k = 2.0

[queues.emails]
handler = "builtins.len"
workers = 2
"""


def test_lists_the_configuration(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --url: every configured item with its parameters, a full quota, exit 0."""
    assert main(["limits", "--config", write(CONFIG), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "from the configuration" in out
    for expected in (
        "100/min, burst 10",
        "1000 per 1h",
        "per key, memory",
        "one quota, memory",
        "10/10",
        "20 (1..50)",
        "search",
        "0/1000",
    ):
        assert expected in out, expected


def test_json_is_the_admin_api_view(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the same lists the admin API answers."""
    assert main(["limits", "--config", write(CONFIG), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in found["limiters"]] == ["clients", "partner"]
    assert [x["algorithm"] for x in found["concurrency"]] == ["aimd", "fixed"]
    assert found["queues"][0]["options"]["workers"] == 2
    assert found["throttles"][0]["options"]["k"] == 2.0


def test_nothing_configured(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration without limits says so and exits 0."""
    assert main(["limits", "--config", write("[breakers.db]\n")]) == 0
    assert "no rate limiters" in capsys.readouterr().out


def test_a_bad_configuration_exits_2(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error is printed with its path; exit 2."""
    path = write('[limits.x]\nalgorithm = "gcra"\nrate = 1\n')
    assert main(["limits", "--config", path]) == 2
    assert "limits.x.burst: is required" in capsys.readouterr().err


@pytest.fixture
def served() -> Iterator[tuple[str, Registry]]:
    """An ops server (uvicorn in a thread) with a limiter and a shedding concurrency limiter."""
    registry = Registry()
    limiter = registry.limiter("partner", TokenBucket(1, burst=2))
    registry.limiter("clients", FixedWindow(5, 60), keyed=True).allow("a")
    for _ in range(3):
        limiter.allow()
    db = registry.add(ConcurrencyLimiter(1, name="db"))

    def nested() -> None:
        with pytest.raises(LoadShedError):
            db.call(lambda: None)

    db.call(nested)
    app = create_app(registry, tokens=TOKENS, state_dir=":memory:", scheduler=None)
    try:
        with ops_server(app, "limits-cli-server") as url:
            yield url, registry
    finally:
        app.state.ops.close()


def test_live_state_from_a_running_server(
    served: tuple[str, Registry], capsys: pytest.CaptureFixture[str]
) -> None:
    """With --url: the live counters; exit 1 while a concurrency limiter sheds load."""
    url, _ = served
    assert main(["limits", "--url", url, "--token", VIEWER, "--no-color"]) == 1
    out = capsys.readouterr().out
    assert "from the configuration" not in out
    assert "shedding" in out
    assert "partner" in out
    assert "clients" in out
    assert main(["limits", "--url", url + "/", "--token", VIEWER, "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    partner = next(x for x in found["limiters"] if x["name"] == "partner")
    assert (partner["allowed"], partner["refused"], partner["remaining"]) == (2, 1, 0)
    assert found["concurrency"][0]["rejected"] == 1


def test_the_server_cannot_be_asked(
    served: tuple[str, Registry], capsys: pytest.CaptureFixture[str]
) -> None:
    """No token (401) or no server: the reason on stderr, exit 2."""
    url, _ = served
    assert main(["limits", "--url", url]) == 2
    assert "HTTP 401" in capsys.readouterr().err
    assert main(["limits", "--url", f"http://127.0.0.1:{stopped_port()}"]) == 2
    assert "cannot reach" in capsys.readouterr().err


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_a_displayed_rate_reads_back_as_the_rate(rate: float) -> None:
    """Whatever unit the table picks, a rate reads back the same (to the 6 digits shown)."""
    assert parse_rate("rate", _per(rate)) == pytest.approx(rate, rel=1e-5)


@given(st.floats(min_value=1e-3, max_value=1e8, allow_nan=False, allow_infinity=False))
def test_a_displayed_window_reads_back_as_the_window(window: float) -> None:
    """Whatever unit the table picks, a window reads back the same (to the 6 digits shown)."""
    assert parse_period("window", _span(window)) == pytest.approx(window, rel=1e-5)
