"""``buttress breakers list|reset|open|disable`` against a real ops server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer.main
from starlette.applications import Starlette

from buttress import Registry
from buttress.breaker import BreakerState
from buttress.cli import main
from buttress.cli._app import app as cli_app
from buttress.cli._breakers import STYLES, show
from buttress.ops import create_app
from buttress.ops._routes_admin import BREAKER_ACTIONS
from tests.ops.conftest import OPERATOR, TOKENS, VIEWER
from tests.servers import ops_server, stopped_port


@dataclass
class Served:
    """The server's URL, its registry and its app."""

    url: str
    registry: Registry
    app: Starlette

    def state(self, name: str) -> str:
        """The breaker's state, read in process."""
        return self.registry.get(name, "breaker").state.value


@pytest.fixture
def served() -> Iterator[Served]:
    """An ops server (uvicorn in a thread) with two closed breakers, payments and inventory."""
    registry = Registry()
    registry.breaker("payments", minimum_calls=2, window=4, open_for=300)
    registry.breaker("inventory")
    app = create_app(registry, tokens=TOKENS, state_dir=":memory:", scheduler=None)
    try:
        with ops_server(app, "breakers-cli-server") as url:
            yield Served(url, registry, app)
    finally:
        app.state.ops.close()


def _list(served: Served, *extra: str) -> int:
    return main(["breakers", "list", "--url", served.url, "--token", VIEWER, *extra])


def _act(served: Served, action: str, name: str, *extra: str, token: str = OPERATOR) -> int:
    return main(["breakers", action, name, "--url", served.url, "--token", token, *extra])


def test_list_all_closed_exits_0(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """Every breaker is listed with its state and counters; all closed: exit 0."""
    assert _list(served, "--no-color") == 0
    out = capsys.readouterr().out
    for column in ("name", "state", "failures", "slow", "window calls", "rejected", "since"):
        assert column in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert set(rows) == {"payments", "inventory"}
    assert rows["payments"][1:6] == ["closed", "0.0%", "0.0%", "0", "0"]
    since = served.registry.get("payments", "breaker").snapshot().since
    assert (
        " ".join(rows["payments"][6:8]) == f"{datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M:%S}"
    )
    assert rows["payments"][-1] == "-"  # no retry-after while closed
    assert "2 breakers: 2 closed" in out


def test_a_breaker_opened_by_failures_exits_1(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """Failed calls open a breaker: list shows it open with its rates and retry-after; exit 1."""
    payments = served.registry.get("payments", "breaker")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            payments.call(_refused)
    assert _list(served, "--no-color") == 1
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("payments"))
    assert row[1:6] == ["open", "100.0%", "0.0%", "2", "0"]
    assert row[-1].endswith("s")
    assert 299 <= float(row[-1][:-1]) <= 300
    assert "1 closed, 1 open" in out
    assert _list(served, "--json") == 1
    found = json.loads(capsys.readouterr().out)["circuit_breakers"]
    listed = {item["name"]: item for item in found}
    assert listed["payments"]["state"] == "open"
    assert listed["payments"]["window_failures"] == 2
    assert listed["inventory"]["state"] == "closed"


def _refused() -> None:
    raise ConnectionError("refused")


def test_each_action_changes_the_listed_state(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """open, disable and reset (operator) change the state a following list shows, and are
    audited with the reason."""
    steps = [("open", "forced_open", 1), ("disable", "disabled", 1), ("reset", "closed", 0)]
    before = "closed"
    for action, after, code in steps:
        assert _act(served, action, "inventory", "--reason", f"INC-7 {action}") == 0
        assert f"inventory: {before} -> {after} (audit entry" in capsys.readouterr().out
        assert served.state("inventory") == after
        assert _list(served, "--no-color") == code
        row = next(ln.split() for ln in capsys.readouterr().out.splitlines() if "inventory" in ln)
        assert row[1] == after
        before = after
    entries = served.app.state.ops.audit.page(limit=3)
    assert [e.action for e in entries] == [
        f"circuit_breaker.{a}" for a in ("reset", "disable", "open")
    ]
    assert {e.actor for e in entries} == {"alice"}
    assert entries[-1].reason == "INC-7 open"
    assert served.state("payments") == "closed"


def test_action_json_and_no_reason(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the API's answer; without --reason the audit entry has none."""
    assert _act(served, "open", "payments", "--json") == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["name"], done["action"]) == ("payments", "open")
    assert (done["before"]["state"], done["after"]["state"]) == ("closed", "forced_open")
    entry = served.app.state.ops.audit.page(limit=1)[0]
    assert entry.id == done["audit_id"]
    assert entry.reason is None


def test_a_viewer_token_cannot_act(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """An action with a viewer token is refused with the role it needs: exit 2, nothing
    changes, the token is not printed."""
    assert _act(served, "open", "payments", token=VIEWER) == 2
    captured = capsys.readouterr()
    assert "buttress breakers: HTTP 403" in captured.err
    assert "operator role" in captured.err
    assert VIEWER not in captured.err + captured.out
    assert served.state("payments") == "closed"


def test_missing_or_bad_tokens_exit_2(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """No token or an unknown one: 401 with where the token comes from; exit 2."""
    assert main(["breakers", "list", "--url", served.url]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401: a bearer token is required" in err
    assert "--token or $BUTTRESS_TOKEN" in err
    bad = "not-a-real-token-0123456789"
    assert main(["breakers", "reset", "payments", "--url", served.url, "--token", bad]) == 2
    captured = capsys.readouterr()
    assert "HTTP 401: the bearer token is not valid" in captured.err
    assert bad not in captured.err + captured.out


def test_an_unknown_breaker_exits_2(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """An action on a name the server does not know says which name: exit 2."""
    assert _act(served, "reset", "nope") == 2
    assert "HTTP 404: no circuit breaker named 'nope'" in capsys.readouterr().err
    assert _act(served, "open", "pay ments/x") == 2  # quoted into one path segment
    assert "HTTP 404" in capsys.readouterr().err


def test_an_unreachable_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens: list and actions say they cannot reach it; exit 2."""
    dead = f"http://127.0.0.1:{stopped_port()}"
    assert main(["breakers", "list", "--url", dead, "--token", VIEWER]) == 2
    assert f"cannot reach {dead}/admin/reliability/circuit-breakers" in capsys.readouterr().err
    assert main(["breakers", "reset", "x", "--url", dead, "--token", OPERATOR]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_url_from_the_configuration_and_token_from_the_environment(
    served: Served,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --url the command asks server.host:server.port of buttress.toml; the token may
    come from $BUTTRESS_TOKEN."""
    port = served.url.rsplit(":", 1)[1]
    (tmp_path / "buttress.toml").write_text(f'[server]\nhost = "0.0.0.0"\nport = {port}\n')
    monkeypatch.setenv("BUTTRESS_TOKEN", OPERATOR)
    assert main(["breakers", "open", "payments", "--no-color"]) == 0
    assert "payments: closed -> forced_open" in capsys.readouterr().out
    monkeypatch.setenv("BUTTRESS_TOKEN", VIEWER)
    assert main(["breakers", "list", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)["circuit_breakers"]
    assert {item["name"]: item["state"] for item in found} == {
        "payments": "forced_open",
        "inventory": "closed",
    }


def test_the_commands_are_the_server_actions() -> None:
    """One subcommand per action of the admin API, named as the API names it, plus list."""
    group = typer.main.get_command(cli_app).commands["breakers"]  # type: ignore[attr-defined]
    assert set(group.commands) == {"list", *BREAKER_ACTIONS}


def test_every_state_has_a_colour_and_nothing_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """Closed green, half-open yellow, open and forced open red; an empty list says so."""
    assert set(STYLES) == {s.value for s in BreakerState}
    assert "green" in STYLES["closed"]
    assert "yellow" in STYLES["half_open"]
    assert "red" in STYLES["open"]
    assert "red" in STYLES["forced_open"]
    show([], True)
    assert capsys.readouterr().out == "no circuit breakers\n"
