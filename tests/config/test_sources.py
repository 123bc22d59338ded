"""Where values come from: ${VAR} interpolation, BUTTRESS_* overrides and the file's location."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress.config import load_config


def test_interpolation_with_defaults(load) -> None:
    """${VAR} takes the variable, ${VAR:-default} the default when unset or empty, $$ is $."""
    config = load(
        """
        [server]
        host = "${HOST}"
        state_dir = "${STATE:-/var/lib/buttress}"
        [fallbacks.f]
        value = ["${EMPTY:-fallback}", "cost: $$5", "${HOST}:${PORT:-80}"]
        """,
        env={"HOST": "0.0.0.0", "EMPTY": ""},
    )
    assert config.server.host == "0.0.0.0"
    assert str(config.server.state_dir) == "/var/lib/buttress"
    assert config.data["fallbacks"]["f"]["value"] == ["fallback", "cost: $5", "0.0.0.0:80"]


def test_a_missing_variable_names_path_and_variable(errors) -> None:
    """A variable that is not set and has no default is an error naming both, for each use."""
    found = errors(
        """
        [health.checks.db]
        kind = "postgres"
        dsn = "${DATABASE_URL}"
        [server]
        host = "${BIND_HOST}"
        """,
        env={"OTHER": "x"},
    )
    assert found == [
        "health.checks.db.dsn: environment variable DATABASE_URL is not set "
        "(give a default with ${DATABASE_URL:-default})",
        "server.host: environment variable BIND_HOST is not set "
        "(give a default with ${BIND_HOST:-default})",
    ]


def test_bad_references_are_errors(errors) -> None:
    """`${1X}` and an unclosed `${` are reported rather than kept as text."""
    found = errors('[server]\nhost = "${1X}"\nstate_dir = "${OPEN"\n')
    assert found == [
        "server.host: invalid reference ${1X}: use ${VAR} or ${VAR:-default}",
        "server.state_dir: unclosed '${' (write '$$' for a literal '$')",
    ]


def test_environment_overrides(load) -> None:
    """BUTTRESS_A__B__C sets a.b.c, parsed as a TOML value when it is one, else a string."""
    config = load(
        """
        [breakers.payments]
        open_for = 30
        on = ["ConnectionError"]
        """,
        env={
            "BUTTRESS_SERVER__PORT": "9000",
            "BUTTRESS_SERVER__HOST": "0.0.0.0",
            "BUTTRESS_SERVER__PUBLIC_READS": "true",
            "BUTTRESS_BREAKERS__PAYMENTS__OPEN_FOR": "10",
            "BUTTRESS_BREAKERS__PAYMENTS__ON": '["TimeoutError"]',
            "BUTTRESS_TIMEOUTS__NEW__SECONDS": "1.5",
            "BUTTRESS_PROFILE_EXTRA": "ignored: no double underscore",
            "BUTTRESS_TEST_REDIS_URL": "redis://ignored",
        },
    )
    assert (config.server.port, config.server.host) == (9000, "0.0.0.0")
    assert config.server.public_reads is True
    breaker = config.registry.get("payments", "breaker")
    assert breaker.options.open_for == 10.0
    assert breaker.options.on == (TimeoutError,)
    assert config.registry.get("new", "timeout").options.seconds == 1.5


def test_override_errors_name_the_variable(errors) -> None:
    """A bad override names the variable that set it; an override through a value fails."""
    found = errors(
        "[server]\nport = 8000\n",
        env={"BUTTRESS_SERVER__PORT": "high", "BUTTRESS_SERVER__PORT__X": "1"},
    )
    assert found == [
        "BUTTRESS_SERVER__PORT__X: cannot set server.port.x: server.port is not a table",
        "server.port: must be an integer >= 0, got 'high' (set by BUTTRESS_SERVER__PORT)",
    ]


def test_file_from_buttress_config_or_working_directory(tmp_path: Path) -> None:
    """$BUTTRESS_CONFIG names the file; else ./buttress.toml is read when present."""
    named = tmp_path / "named.toml"
    named.write_text("[server]\nport = 1111\n")
    assert load_config(environ={"BUTTRESS_CONFIG": str(named)}).server.port == 1111
    assert load_config(environ={}).path is None
    (tmp_path / "buttress.toml").write_text("[server]\nport = 2222\n")
    config = load_config(environ={})
    assert config.path == Path("buttress.toml")
    assert config.server.port == 2222
    assert load_config(named, environ={"BUTTRESS_CONFIG": "nope.toml"}).server.port == 1111


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9000", 9000),
        ("0.25", 0.25),
        ("true", True),
        ('"quoted"', "quoted"),
        ("[1, 2]", [1, 2]),
        ("{kind = 'constant', delay = 0}", {"kind": "constant", "delay": 0}),
        ("plain text", "plain text"),
        ("2024-01-02", "2024-01-02"),
        ("1\nother = 2", "1\nother = 2"),
    ],
)
def test_override_values_parse_as_toml(text: str, expected: object) -> None:
    """Override values are TOML values when they parse as one (not dates), else strings."""
    from buttress.config._source import parse_value

    assert parse_value(text) == expected
