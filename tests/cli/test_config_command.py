"""`buttress config check` validates; `buttress config show` prints the effective settings."""

from __future__ import annotations

import json
import tomllib

from buttress.cli import main

DIGEST = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
GOOD = f"""
[server]
port = 9000
[[server.tokens]]
name = "deploy"
role = "operator"
sha256 = "{DIGEST}"

[breakers.pay]
on = ["ConnectionError"]
[retries.pay]
on = "ConnectionError"
[pipelines.pay]
policies = ["retry.pay", "breaker.pay"]

[health.checks.db]
kind = "postgres"
dsn = "postgresql://app:${{DB_PASSWORD}}@db:5432/app"
"""


def test_check_prints_ok_and_a_summary(write, capsys, monkeypatch) -> None:
    """A valid file: `ok`, the file and profile, and what it declares; exit 0."""
    monkeypatch.setenv("DB_PASSWORD", "cli-db-pass-42")
    assert main(["config", "check", write(GOOD)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ")
    assert "profile production" in out
    assert "1 breaker, 1 retry, 1 pipeline, 1 health check" in out
    assert "server 127.0.0.1:9000 with 1 token" in out


def test_check_without_a_file_checks_the_defaults(capsys) -> None:
    """No file anywhere: the defaults are valid."""
    assert main(["config", "check"]) == 0
    assert "no file (defaults only)" in capsys.readouterr().out


def test_check_lists_every_error_and_exits_2(write, capsys) -> None:
    """A bad file: every error with its path on stderr; exit 2."""
    path = write(
        '[server]\nport = -1\n[breakers.a]\nwindw = 3\n[health.checks.x]\nkind = "disk"\n'
        "timeout = -1\n"
    )
    assert main(["config", "check", path]) == 2
    err = capsys.readouterr().err
    assert "3 errors" in err
    assert "server.port: must be an integer >= 0, got -1" in err
    assert "breakers.a.windw: unknown key (did you mean 'window'?)" in err
    assert "health.checks.x.timeout: must be a duration > 0 seconds, got -1" in err


def test_check_of_a_missing_file_exits_2(capsys) -> None:
    """Naming a file that does not exist is an error."""
    assert main(["config", "check", "missing.toml"]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_show_prints_effective_toml_without_secrets(write, capsys, monkeypatch) -> None:
    """`config show` prints TOML with profile defaults filled in and no secret in it."""
    monkeypatch.setenv("DB_PASSWORD", "cli-db-pass-42")
    monkeypatch.setenv("BUTTRESS_SERVER__HOST", "0.0.0.0")
    assert main(["config", "show", "--config", write(GOOD), "--profile", "testing"]) == 0
    out = capsys.readouterr().out
    assert "cli-db-pass-42" not in out
    assert DIGEST not in out
    data = tomllib.loads(out)
    assert data["profile"] == "testing"
    assert data["server"]["host"] == "0.0.0.0"
    assert data["server"]["tokens"][0]["sha256"] == "***"
    assert data["breakers"]["pay"]["open_for"] == 1.0  # the testing profile's default
    assert data["health"]["checks"]["db"]["dsn"] == "postgresql://app:***@db:5432/app"


def test_show_json(write, capsys, monkeypatch) -> None:
    """`config show --json` prints the same masked data as JSON."""
    monkeypatch.setenv("DB_PASSWORD", "cli-db-pass-42")
    assert main(["config", "show", "--json", "-c", write(GOOD)]) == 0
    out = capsys.readouterr().out
    assert "cli-db-pass-42" not in out
    assert json.loads(out)["retries"]["pay"]["attempts"] == 3


def test_show_of_a_bad_file_exits_2(write, capsys) -> None:
    """`config show` refuses a bad file with its errors."""
    assert main(["config", "show", "-c", write("[nope]\n")]) == 2
    assert "nope: unknown section" in capsys.readouterr().err
