"""Profiles supply defaults under the file's values; [profiles.<name>] overrides per profile."""

from __future__ import annotations

import pytest

from buttress import Backoff
from buttress.config import DEFAULT_PROFILE, PROFILES

FILE = """
[breakers.pay]
on = ["ConnectionError"]
[retries.pay]
on = "ConnectionError"
[health.checks.disk]
kind = "disk"
"""


def _effective(config) -> tuple[object, ...]:
    breaker = config.registry.get("pay", "breaker").options
    retry = config.registry.get("pay", "retry").options
    check = config.health.checks()
    disk = next(c for c in check if c.name == "disk")
    return (
        breaker.minimum_calls,
        breaker.open_for,
        retry.attempts,
        retry.backoff,
        disk.timeout,
        disk.ttl,
        config.monitor.interval,
        config.monitor.cooldown,
    )


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (
            "production",
            (20, 60.0, 3, Backoff.exponential(0.1, 2, 10, jitter="full"), 5.0, 30.0, 60.0, 300.0),
        ),
        (
            "development",
            (5, 10.0, 3, Backoff.exponential(0.05, 2, 2, jitter="full"), 2.0, 5.0, 15.0, 60.0),
        ),
        ("testing", (2, 1.0, 1, Backoff.constant(0), 1.0, 0.0, 1.0, 0.0)),
    ],
)
def test_each_profile_supplies_its_documented_defaults(load, profile: str, expected) -> None:
    """Every profile fills in the values docs/configuration.md gives for it."""
    assert _effective(load(FILE, profile=profile)) == expected


def test_production_is_the_default_profile(load) -> None:
    """Without any choice, the profile is production."""
    assert DEFAULT_PROFILE == "production"
    assert set(PROFILES) == {"production", "development", "testing"}
    assert load(FILE).profile == "production"


def test_profile_precedence(load) -> None:
    """The argument beats $BUTTRESS_PROFILE, which beats the file's `profile` key."""
    text = 'profile = "development"\n' + FILE
    assert load(text).profile == "development"
    assert load(text, env={"BUTTRESS_PROFILE": "testing"}).profile == "testing"
    env = {"BUTTRESS_PROFILE": "testing"}
    assert load(text, env=env, profile="production").profile == "production"


def test_file_values_win_over_profile_defaults(load) -> None:
    """A value the file sets is kept under any profile."""
    text = FILE.replace('on = ["ConnectionError"]', 'on = ["ConnectionError"]\nopen_for = 42', 1)
    config = load(text, profile="testing")
    assert config.registry.get("pay", "breaker").options.open_for == 42.0


def test_profile_tables_merge_over_the_file(load) -> None:
    """[profiles.<active>] merges key by key; an option table such as backoff is replaced."""
    text = (
        FILE.replace(
            'on = "ConnectionError"',
            'on = "ConnectionError"\nattempts = 5\n'
            'backoff = {kind = "exponential", base = 1, factor = 3}',
            1,
        )
        + """
        [server]
        port = 8000
        [profiles.testing.server]
        port = 0
        [profiles.testing.retries.pay]
        backoff = {kind = "constant", delay = 0.5}
        [profiles.development.server]
        port = 8001
        """
    )
    testing = load(text, profile="testing")
    assert testing.server.port == 0
    retry = testing.registry.get("pay", "retry").options
    assert retry.backoff == Backoff.constant(0.5)
    assert retry.attempts == 5  # the base file's value, kept by the merge
    assert load(text, profile="development").server.port == 8001
    assert load(text, profile="production").server.port == 8000
    assert "profiles" not in testing.data
    assert testing.data["profile"] == "testing"


def test_unknown_profiles_are_errors(errors) -> None:
    """An unknown profile from the file, the environment or the argument is an error."""
    assert errors('profile = "prod"\n') == [
        "profile: unknown profile 'prod': expected one of production, development, testing"
    ]
    assert errors("", env={"BUTTRESS_PROFILE": "qa"}) == [
        "unknown profile 'qa': expected one of production, development, testing "
        "(set by BUTTRESS_PROFILE)"
    ]
    assert errors("", profile="testin") == [
        "unknown profile 'testin' (did you mean 'testing'?): expected one of production, "
        "development, testing (set by the profile argument)"
    ]


def test_a_profile_default_that_conflicts_says_where_it_came_from(errors) -> None:
    """An error on a value the profile supplied names the profile, so it can be overridden."""
    found = errors("[breakers.small]\nwindow = 10\n", profile="production")
    assert found == [
        "breakers.small.minimum_calls: must be <= window (10), got 20 "
        "(set by the production profile)"
    ]
