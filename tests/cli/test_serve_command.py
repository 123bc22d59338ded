"""`buttress serve` (the ops server from the configuration) and `buttress token create`."""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.cli import main
from buttress.config import load_config
from buttress.ops import hash_token
from tests.serve_support import ServeProcess


def _create(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    assert main(["token", "create", *argv]) == 0
    out = capsys.readouterr().out
    token = re.search(r"^\s+(btr_\S+)$", out, re.MULTILINE)
    assert token is not None, out
    return token.group(1), out[out.index("[[server.tokens]]") :]


def test_token_create_prints_the_token_once_and_its_hash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The token appears once; the TOML snippet holds its name, role and SHA-256, not it."""
    token, snippet = _create(capsys, "--role", "operator", "--name", "ci")
    (entry,) = tomllib.loads(snippet)["server"]["tokens"]
    assert entry == {"name": "ci", "role": "operator", "sha256": hash_token(token)}
    assert token not in snippet


def test_token_snippet_is_accepted_by_the_configuration(
    capsys: pytest.CaptureFixture[str], write: Callable[[str], str]
) -> None:
    """Pasted into buttress.toml, the snippet configures a token with that role."""
    token, snippet = _create(capsys, "--role", "viewer")
    config = load_config(write(snippet), environ={})
    assert config.server.role_of(token) == "viewer"
    assert config.server.tokens[0].name.startswith("viewer-")


@pytest.mark.parametrize("argv", [["--role", "admin"], [], ["--role", "viewer", "--name", ""]])
def test_token_create_refuses_bad_input(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown or missing role, or an empty name, exits 2 without printing a token."""
    assert main(["token", "create", *argv]) == 2
    assert "btr_" not in capsys.readouterr().out


def test_serve_reports_configuration_errors(
    capsys: pytest.CaptureFixture[str], write: Callable[[str], str]
) -> None:
    """A bad file is reported like `config check` does (exit 2), and nothing is served."""
    path = write("[server]\nport = 99999\n")
    assert main(["serve", "--config", path]) == 2
    assert "server.port" in capsys.readouterr().err


def test_serve_without_the_server_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without starlette/uvicorn, serve names the extra to install and exits 2."""
    monkeypatch.setitem(sys.modules, "buttress.ops", None)
    assert main(["serve"]) == 2
    assert "pip install 'buttress[server]'" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_runs_the_configured_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`buttress serve` in a process: probes public, admin API behind the configured token,
    the configured breaker and the jobs listed, state in the configured directory; Ctrl-C
    stops it gracefully with status 0."""
    token, snippet = _create(capsys, "--role", "viewer", "--name", "ops")
    config = tmp_path / "buttress.toml"
    config.write_text(
        '[server]\nstate_dir = "state"\n\n[breakers.payments]\nfailure_rate = 0.5\n\n' + snippet
    )
    with ServeProcess(tmp_path, "--config", str(config)) as served:
        live = served.wait_for("/health/live")
        assert live.status_code == 200
        viewer = {"Authorization": f"Bearer {token}"}
        assert served.client.get("/admin/reliability/circuit-breakers").status_code == 401
        breakers = served.client.get("/admin/reliability/circuit-breakers", headers=viewer).json()
        jobs = served.client.get("/admin/reliability/jobs", headers=viewer).json()["jobs"]
        out, err = served.stop()
    assert [b["name"] for b in breakers["circuit_breakers"]] == ["payments"]
    assert {job["name"] for job in jobs} == {
        "health-monitor",
        "breaker-monitor",
        "reliability-report",
    }
    assert served.returncode == 0, err
    assert f"http://127.0.0.1:{served.port}" in err  # uvicorn's startup line
    assert "Application shutdown complete" in err
    assert "Traceback" not in err
    assert "buttress.toml, profile production" in out
    assert (tmp_path / "state" / "buttress.db").exists()
