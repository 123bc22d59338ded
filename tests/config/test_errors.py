"""A bad configuration yields every error at once, each with its path, and never a secret."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from buttress import ConfigError
from buttress.config import ConfigFileError, load_config

BAD = """
[server]
port = 70000
prot = 1

[[server.tokens]]
name = "ci"
role = "admin"
sha256 = "not-a-digest"

[breakers.payments]
failure_rate = 2
minimum_calls = 0
opn_for = 3
on = ["NoSuchError", "httpx.Nope"]

[retries.x]
attempts = 0
budget = "nope"
backoff = {kind = "exponential", bse = 1}

[pipelines.p]
policies = ["breakers.payments", "timeout.zz"]

[health.checks.db]
kind = "tcp"
host = "127.0.0.1"
port = 5432
timeout = -1

[health.checks.cache]
kind = "redsi"

[whatever]
"""


def test_every_error_is_reported_with_its_path(errors) -> None:
    """One load of a bad file lists all of its problems, each prefixed by its dotted path."""
    found = errors(BAD)
    expected = [
        "server.port: must be an integer from 0 to 65535, got 70000",
        "server.prot: unknown key (did you mean 'port'?)",
        "server.tokens[0].role: must be 'viewer' or 'operator', got 'admin'",
        "server.tokens[0].sha256: must be 64 hex characters: the SHA-256 of the token, "
        "got <hidden>",
        "breakers.payments.failure_rate: must be a rate in (0, 1], got 2",
        "breakers.payments.minimum_calls: must be an integer >= 1, got 0",
        "breakers.payments.opn_for: unknown key (did you mean 'open_for'?)",
        "breakers.payments.on[0]: no builtin or buttress exception named 'NoSuchError' "
        "(use module.Name)",
        "breakers.payments.on[1]: 'httpx' has no attribute 'Nope'",
        "retries.x.on: is required",
        "retries.x.attempts: must be an integer >= 1, got 0",
        "retries.x.budget: no [budgets.nope] is configured",
        "retries.x.backoff.bse: unknown exponential backoff parameter (did you mean 'base'?)",
        "pipelines.p.policies[1]: 'timeout.zz' refers to [timeouts.zz], which is not configured",
        "health.checks.db.timeout: must be a duration > 0 seconds, got -1",
        "health.checks.cache.kind: unknown check kind 'redsi' (did you mean 'redis'?)",
        "whatever: unknown section",
    ]
    hint = "pipelines.p.policies[0]: 'breakers.payments' is not a 'kind.name' reference"
    assert [e for e in found if e.startswith(hint)] == [
        f"{hint} (kinds: breaker, bulkhead, concurrency, fallback, limiter, pipeline, retry, "
        "throttle, timeout) "
        "(did you mean 'breaker'?)"
    ]
    assert sorted(e for e in found if not e.startswith(hint)) == sorted(expected)


def test_the_message_lists_every_error_under_the_file(errors, load) -> None:
    """str(error) names the file and the count, then one error per line."""
    with pytest.raises(ConfigFileError) as caught:
        load("[breakers.a]\nwindow = 0\n[breakers.b]\nfailure_rate = 0\n")
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("buttress.toml: 2 errors")
    assert lines[1:] == [
        "  breakers.a.window: must be an integer >= 1, got 0",
        "  breakers.b.failure_rate: must be a rate in (0, 1], got 0",
    ]


def test_config_file_error_is_a_config_error(errors) -> None:
    """ConfigFileError is a buttress ConfigError and a ValueError, with .errors, and pickles."""
    error = ConfigFileError(["a.b: bad"], "x.toml")
    assert isinstance(error, ConfigError)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.errors == ["a.b: bad"]
    assert str(copy) == str(error)


def test_a_check_error_from_make_check_gets_the_check_path(errors) -> None:
    """A ConfigError raised by make_check is mapped onto health.checks.<name>.<field>."""
    found = errors('[health.checks.db]\nkind = "postgres"\n')
    assert found == ["health.checks.db.dsn: is required for a postgres check"]
    found = errors('[health.checks.db]\nkind = "tcp"\nhost = "h"\nport = 1\ntimeout = 0\n')
    assert found == ["health.checks.db.timeout: must be a duration > 0 seconds, got 0"]


def test_missing_check_kind(errors) -> None:
    """A check without a kind says so at its kind's path."""
    assert errors("[health.checks.db]\ntimeout = 1\n") == [
        "health.checks.db.kind: is required: the kind of check, got None"
    ]


def test_unknown_keys_everywhere_get_hints(errors) -> None:
    """Unknown keys in health, alerts, profiles and checks are errors with a close match."""
    found = errors(
        """
        [health]
        intervall = 5
        [[health.alerts]]
        kind = "webhok"
        [health.checks.d]
        kind = "disk"
        pth = "/"
        [profiles.testng]
        [profiles.testing.brakers.x]
        """
    )
    assert "health.intervall: unknown key (did you mean 'interval'?)" in found
    assert "health.alerts[0].kind: must be 'log' or 'webhook', got 'webhok'" in found
    assert "health.checks.d.pth: unknown option of a disk check (did you mean 'path'?)" in found
    assert "profiles.testng: unknown profile (did you mean 'testing'?)" in found
    assert "profiles.testing.brakers: unknown section (did you mean 'breakers'?)" in found


def test_pipeline_cycles_and_bad_references(errors) -> None:
    """Pipelines naming each other in a loop, or not naming kind.name, are errors."""
    found = errors(
        """
        [pipelines.a]
        policies = ["pipeline.b"]
        [pipelines.b]
        policies = ["pipeline.a"]
        [pipelines.c]
        policies = "timeout.x"
        """
    )
    assert "pipelines.a.policies: pipelines refer to each other in a cycle: a -> b -> a" in found
    assert any(e.startswith("pipelines.c.policies: must be a list of 'kind.name'") for e in found)


def test_invalid_toml_is_one_error_with_its_position(tmp_path: Path) -> None:
    """A syntax error is reported with its line and column."""
    path = tmp_path / "broken.toml"
    path.write_text("[server]\nport = \n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path, environ={})
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith("invalid TOML: ")
    assert "line 2" in caught.value.errors[0]


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    """An explicit path, or $BUTTRESS_CONFIG, naming no file is an error, not defaults."""
    with pytest.raises(ConfigFileError, match="no such file"):
        load_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigFileError, match="named by BUTTRESS_CONFIG"):
        load_config(environ={"BUTTRESS_CONFIG": str(tmp_path / "missing.toml")})


def test_errors_never_show_secrets(errors) -> None:
    """Values of secret keys, URL passwords and interpolated secrets are masked in errors."""
    found = errors(
        """
        [[health.alerts]]
        kind = "log"
        url = "https://bob:pa55w0rd-xyz@hooks.example.com/x"
        [[server.tokens]]
        name = "raw"
        role = "viewer"
        sha256 = "${API_TOKEN}"
        """,
        env={"API_TOKEN": "tok-very-secret-9"},
    )
    text = "\n".join(found)
    assert "pa55w0rd-xyz" not in text
    assert "tok-very-secret-9" not in text
    assert "health.alerts[0].url: is only for webhook alerts" in text


def test_pipeline_over_a_broken_policy_reports_only_the_policy(errors) -> None:
    """A pipeline naming a policy that failed adds no error of its own."""
    found = errors(
        """
        [breakers.b]
        window = 0
        [pipelines.p]
        policies = ["breaker.b"]
        """
    )
    assert found == ["breakers.b.window: must be an integer >= 1, got 0"]
