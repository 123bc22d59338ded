"""`buttress health`: a table or IETF JSON of the configured checks, and an exit status for CI."""

from __future__ import annotations

import json

import pytest

from buttress.cli import main

PASSING = """
[health.checks.disk]
kind = "disk"
path = "."
[health.checks.threads]
kind = "threads"
[health.checks.ok]
kind = "command"
command = ["true"]
"""

WARNING = (
    PASSING
    + """
[health.checks.optional]
kind = "command"
command = ["false"]
critical = false
"""
)


def failing(port: int) -> str:
    """A configuration whose critical tcp check hits a stopped port."""
    return PASSING + f'[health.checks.db]\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'


def test_all_passing_exits_0(write, capsys) -> None:
    """Every check passing: a table of them, `status: pass`, exit status 0."""
    assert main(["health", "--config", write(PASSING)]) == 0
    out = capsys.readouterr().out
    for name in ("disk", "threads", "ok", "process"):
        assert name in out
    assert "status: pass" in out
    assert "percent" in out  # the disk's observed value and unit


def test_a_failing_critical_check_exits_2(write, capsys, stopped_port: int) -> None:
    """A refused TCP connection fails its critical check: exit status 2, the reason shown."""
    assert main(["health", "-c", write(failing(stopped_port))]) == 2
    out = capsys.readouterr().out
    assert "status: fail" in out
    assert "connection refused" in out


def test_a_warning_exits_1(write, capsys) -> None:
    """A non-critical check failing makes the whole warn: exit status 1."""
    assert main(["health", "--config", write(WARNING)]) == 1
    assert "status: warn" in capsys.readouterr().out


def test_json_is_the_ietf_document(write, capsys, stopped_port: int) -> None:
    """--json prints application/health+json: status and checks keyed name:measurement."""
    assert main(["health", "--json", "--config", write(failing(stopped_port))]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "fail"
    assert doc["checks"]["db:responseTime"][0]["status"] == "fail"
    assert doc["checks"]["db:responseTime"][0]["componentId"] == "db"
    disk = doc["checks"]["disk:utilization"][0]
    assert disk["observedUnit"] == "percent"
    assert "details" not in disk  # only with --verbose
    assert main(["health", "--json", "--verbose", "--config", write(PASSING)]) == 0
    assert "details" in json.loads(capsys.readouterr().out)["checks"]["disk:utilization"][0]


def test_group_selects_checks(write, capsys) -> None:
    """--group liveness runs only the liveness checks (the built-in process check)."""
    assert main(["health", "--group", "liveness", "--config", write(WARNING)]) == 0
    out = capsys.readouterr().out
    assert "process" in out
    assert "optional" not in out
    assert main(["health", "--group", "nope", "--config", write(WARNING)]) == 2


def test_verbose_shows_keys_types_and_details(write, capsys) -> None:
    """--verbose adds each check's key, type, criticality, groups and details."""
    assert main(["health", "-v", "--config", write(WARNING)]) == 1
    out = capsys.readouterr().out
    assert "optional  optional:status, component, non-critical, groups: readiness" in out
    assert "exit_code=1" in out


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        ([], {}, True),
        (["--no-color"], {}, False),
        ([], {"NO_COLOR": "1"}, False),
    ],
)
def test_colour_can_be_turned_off(write, capsys, monkeypatch, args, env, coloured) -> None:
    """Colour shows on a terminal unless --no-color is given or NO_COLOR is set."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if on a terminal
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["health", *args, "--config", write(PASSING)]) == 0
    assert ("\x1b[" in capsys.readouterr().out) is coloured


def test_config_errors_exit_2_listing_every_error(write, capsys) -> None:
    """A bad file: exit 2 with every error on stderr, no check run."""
    path = write('[health.checks.a]\nkind = "disk"\ntimeout = -1\n[health.checks.b]\nkind = "x"\n')
    assert main(["health", "--config", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "buttress.toml: 2 errors" in captured.err
    assert "health.checks.a.timeout: must be a duration > 0 seconds, got -1" in captured.err
    assert "health.checks.b.kind: unknown check kind 'x'" in captured.err


def test_configuration_comes_from_the_environment_and_profile(write, capsys, monkeypatch) -> None:
    """Without --config, $BUTTRESS_CONFIG names the file; --profile picks the profile."""
    monkeypatch.setenv("BUTTRESS_CONFIG", write(WARNING, "elsewhere.toml"))
    assert main(["health", "--profile", "testing"]) == 1
    assert main(["health", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
