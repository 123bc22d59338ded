"""``buttress degrade status|set|clear`` against a real ops server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from buttress import Registry
from buttress.cli import main
from buttress.degrade import BreakerRule, DegradationManager
from buttress.health import HealthRegistry
from buttress.ops import create_app
from tests.ops.conftest import OPERATOR, TOKENS, VIEWER
from tests.servers import ops_server, stopped_port


@pytest.fixture
def served() -> Iterator[tuple[str, DegradationManager]]:
    """An ops server (uvicorn in a thread) whose registry holds a manager; its URL."""
    registry = Registry()
    registry.breaker("payments")
    manager = DegradationManager(
        [BreakerRule("payments", "moderate")],
        features={"recommendations": "moderate"},
        registry=registry,
    )
    health = HealthRegistry()
    app = create_app(registry, health=health, tokens=TOKENS, state_dir=":memory:", scheduler=None)
    try:
        with ops_server(app, "degrade-cli-server") as url:
            yield url, manager
    finally:
        manager.close()
        app.state.ops.close()


def test_status_set_and_clear(
    served: tuple[str, DegradationManager], capsys: pytest.CaptureFixture[str]
) -> None:
    """status exits 0 at normal; set (operator) changes the level and status exits 1; clear
    brings it back."""
    url, manager = served
    assert main(["degrade", "status", "--url", url, "--token", VIEWER, "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "level: normal" in out
    assert "recommendations" in out
    assert "payments" in out
    code = main(
        [
            "degrade",
            "set",
            "severe",
            "--reason",
            "db failover",
            "--expires-in",
            "600",
            "--url",
            url,
            "--token",
            OPERATOR,
        ]
    )
    assert code == 0
    assert "level: normal -> severe until" in capsys.readouterr().out
    assert manager.level.label == "severe"
    assert main(["degrade", "status", "--url", url, "--token", VIEWER, "--no-color"]) == 1
    out = capsys.readouterr().out
    assert "override: severe by alice" in out
    assert "reason: db failover" in out
    assert main(["degrade", "clear", "--reason", "done", "--url", url, "--token", OPERATOR]) == 0
    assert "override cleared: severe -> normal" in capsys.readouterr().out
    assert main(["degrade", "clear", "--url", url, "--token", OPERATOR]) == 0
    assert "no override was set" in capsys.readouterr().out


def test_status_json_and_token_from_the_environment(
    served: tuple[str, DegradationManager],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--json prints the API's document; the token may come from $BUTTRESS_TOKEN."""
    url, _ = served
    monkeypatch.setenv("BUTTRESS_TOKEN", VIEWER)
    assert main(["degrade", "status", "--json", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["level"] == "normal"


def test_refusals_and_unreachable_servers_exit_2(
    served: tuple[str, DegradationManager], capsys: pytest.CaptureFixture[str]
) -> None:
    """A viewer cannot set, a bad level is refused, a dead server is reported: exit 2."""
    url, manager = served
    assert main(["degrade", "set", "minor", "--reason", "x", "--url", url, "--token", VIEWER]) == 2
    assert "HTTP 403" in capsys.readouterr().err
    assert (
        main(["degrade", "set", "worse", "--reason", "x", "--url", url, "--token", OPERATOR]) == 2
    )
    assert "level must be one of" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{stopped_port()}"
    assert main(["degrade", "status", "--url", dead]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert manager.override is None


def test_the_url_defaults_to_the_configured_server(
    served: tuple[str, DegradationManager],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --url the command asks server.host:server.port of buttress.toml."""
    url, _ = served
    port = url.rsplit(":", 1)[1]
    (tmp_path / "buttress.toml").write_text(f'[server]\nhost = "0.0.0.0"\nport = {port}\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUTTRESS_CONFIG", raising=False)
    assert main(["degrade", "status", "--token", VIEWER, "--no-color"]) == 0
    assert "level: normal" in capsys.readouterr().out
