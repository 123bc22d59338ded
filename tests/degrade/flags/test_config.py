"""The [flags] section of buttress.toml: settings, defaults, errors, opening the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress.config import ConfigFileError, load_config
from buttress.config._flags import FlagSettings
from buttress.degrade import DegradationManager
from buttress.degrade.flags import Flag
from buttress.errors import ConfigError
from buttress.registry import Registry
from buttress.testing import ManualClock


def _load(tmp_path: Path, text: str, **environ: str) -> FlagSettings:
    path = tmp_path / "buttress.toml"
    path.write_text(text)
    return load_config(path, environ=environ).flags


def test_defaults_without_a_section() -> None:
    """No [flags]: SQLite in the state directory, namespace default, a 0.5 s sync."""
    settings = load_config(environ={}).flags
    assert settings.url(".buttress") == "sqlite:///.buttress/flags.db"
    assert (settings.namespace, settings.sync_interval, settings.audit_days) == ("default", 0.5, 90)
    assert load_config(environ={}).data["flags"]["namespace"] == "default"


def test_section_and_defaults_are_read(tmp_path: Path) -> None:
    """Keys of [flags] and each [flags.defaults.<name>] table become settings and flags."""
    settings = _load(
        tmp_path,
        """
[flags]
store = "redis://cache:6379/0"
namespace = "shop"
sync_interval = 0.25
audit_days = 0

[flags.defaults.checkout]
enabled = true
rollout = 10
rules = [{attribute = "tenant", values = ["acme"]}]
""",
    )
    assert settings.url() == "redis://cache:6379/0"
    assert (settings.namespace, settings.sync_interval, settings.audit_days) == ("shop", 0.25, 0)
    (flag,) = settings.defaults
    assert (flag.name, flag.rollout, flag.rules[0].values) == ("checkout", 10, ("acme",))


def test_environment_overrides(tmp_path: Path) -> None:
    """BUTTRESS_FLAGS__NAMESPACE overrides the file."""
    settings = _load(tmp_path, '[flags]\nnamespace = "a"\n', BUTTRESS_FLAGS__NAMESPACE="b")
    assert settings.namespace == "b"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[flags]\ncolour = 1\n", "flags.colour"),
        ("[flags]\nsync_interval = 0\n", "flags.sync_interval"),
        ("[flags.defaults.f]\nrollout = 200\n", "flags.defaults.f.rollout"),
        ("[flags.defaults.f]\nrules = [{attribute = 'u', op = 'like', values = ['a']}]\n", "op"),
    ],
)
def test_bad_settings_name_the_path(tmp_path: Path, text: str, where: str) -> None:
    """A bad key or value in [flags] is reported with its path."""
    with pytest.raises(ConfigFileError) as caught:
        _load(tmp_path, text)
    assert where in str(caught.value)


def test_config_show_round_trips(tmp_path: Path) -> None:
    """The effective [flags] (as `config show` prints it) loads back to the same settings."""
    path = tmp_path / "buttress.toml"
    path.write_text('[flags]\nnamespace = "x"\n[flags.defaults.f]\nenabled = true\n')
    config = load_config(path, environ={})
    again = tmp_path / "again.toml"
    again.write_text(config.to_toml())
    assert load_config(again, environ={}).flags == config.flags


def test_open_seeds_defaults_and_attaches(tmp_path: Path) -> None:
    """open() creates absent defaults (never overwriting), attaches to the registry and takes
    its degradation manager as the level source."""
    clock = ManualClock()
    registry = Registry(clock=clock)
    manager = DegradationManager(registry=registry, clock=clock)
    settings = FlagSettings(
        store=f"sqlite:///{tmp_path}/flags.db",
        defaults=(Flag("search", enabled=True, off_at="severe"),),
    )
    flags = settings.open(registry=registry, sync=False)
    try:
        assert registry.of_kind("flags") == [flags]
        assert [c.actor for c in flags.history()] == ["buttress.toml"]
        flags.set_rollout("search", 50)
        manager.set_level("critical", reason="drill", actor="test")
        assert not flags.enabled("search", user="1")
    finally:
        flags.close()
        manager.close()
    with settings.open(sync=False) as reopened:
        assert reopened.get("search").rollout == 50  # the default did not overwrite
        assert len(reopened.history()) == 2


def test_settings_validate() -> None:
    """FlagSettings refuses an empty store URL or namespace."""
    with pytest.raises(ConfigError):
        FlagSettings(store="")
    with pytest.raises(ConfigError):
        FlagSettings(namespace="")
