"""`buttress flags ...`: list, get, set, enable, disable, rollout, kill, delete, export, import."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.cli import main
from buttress.cli._flags import parse_rule, parse_variant
from buttress.degrade.flags import FlagRule, FlagStore, Variant
from buttress.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory without BUTTRESS_* variables, wide and without colour."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BUTTRESS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("NO_COLOR", "1")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line; its exit status, stdout and stderr."""
    status = main(["flags", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def stored(tmp_path: Path) -> FlagStore:
    """The flag store the commands use by default (.buttress/flags.db)."""
    return FlagStore(f"sqlite:///{tmp_path}/.buttress/flags.db", sync_interval=None)


def test_set_creates_then_changes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`set` creates a missing flag, then changes only the given fields; both audited."""
    status, out, _ = run(
        capsys,
        "set",
        "checkout",
        "--enabled",
        "--rollout",
        "10",
        "--actor",
        "ann",
        "--reason",
        "go",
    )
    assert status == 0
    assert "checkout: create (audit #1)" in out
    assert run(capsys, "set", "checkout", "--rule", "tenant in acme,globex")[0] == 0
    with stored(tmp_path) as flags:
        flag = flags.get("checkout")
        assert (flag.enabled, flag.rollout) == (True, 10)
        assert flag.rules == (FlagRule("tenant", "in", ["acme", "globex"]),)
        history = flags.history()
        assert [(c.action, c.actor, c.reason) for c in history][-1] == ("create", "ann", "go")
        assert "@" in history[0].actor  # the default actor is user@host


def test_toggles_and_rollout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """enable, disable, rollout, kill and revive change the flag; a no-op says so."""
    run(capsys, "set", "f")
    assert run(capsys, "enable", "f")[0] == 0
    assert run(capsys, "enable", "f")[1] == "f: no change\n"
    assert run(capsys, "rollout", "f", "25")[0] == 0
    assert run(capsys, "kill", "f", "--reason", "incident")[0] == 0
    with stored(tmp_path) as flags:
        assert flags.get("f").killed
        assert flags.get("f").rollout == 25
    run(capsys, "revive", "f")
    run(capsys, "disable", "f")
    with stored(tmp_path) as flags:
        assert not flags.get("f").killed
        assert not flags.get("f").enabled


def test_list_and_get(capsys: pytest.CaptureFixture[str]) -> None:
    """`list` shows each flag's status and rollout; `--json` and `get` print JSON."""
    run(capsys, "set", "a", "--enabled", "--rollout", "50", "--description", "the A")
    run(capsys, "set", "b", "--variant", "red:1:#f00", "--variant", "blue")
    status, out, _ = run(capsys, "list")
    assert status == 0
    assert "partial" in out
    assert "50%" in out
    assert "variants red,blue" in out
    listed = json.loads(run(capsys, "list", "--json")[1])
    assert [f["name"] for f in listed["flags"]] == ["a", "b"]
    one = json.loads(run(capsys, "get", "b")[1])
    assert one["variants"][0] == {"name": "red", "weight": 1, "value": "#f00"}
    assert one["status"] == "off"


def test_errors_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown flag exits 1 with its name; a bad value exits 2 naming the field."""
    status, _, err = run(capsys, "enable", "ghost")
    assert status == 1
    assert "ghost" in err
    status, _, err = run(capsys, "set", "x", "--off-at", "sometime")
    assert status == 2
    assert "level" in err
    status, _, err = run(capsys, "set", "x", "--rule", "tenant like a")
    assert status == 2
    assert "op" in err


def test_export_import_delete(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`export` writes what `import` reads back; `delete` removes; `--replace` prunes."""
    run(capsys, "set", "a", "--enabled")
    run(capsys, "set", "b")
    assert run(capsys, "export", str(tmp_path / "flags.json"))[0] == 0
    assert run(capsys, "delete", "a")[0] == 0
    status, out, _ = run(capsys, "import", str(tmp_path / "flags.json"))
    assert status == 0
    assert "a: imported" in out
    document = json.loads((tmp_path / "flags.json").read_text())
    document["flags"] = document["flags"][:1]
    (tmp_path / "one.json").write_text(json.dumps(document))
    out = run(capsys, "import", str(tmp_path / "one.json"), "--replace")[1]
    assert "b: deleted" in out
    exported = json.loads(run(capsys, "export")[1])
    assert [f["name"] for f in exported["flags"]] == ["a"]


def test_store_from_the_configuration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, write_config: Callable[[str], str]
) -> None:
    """[flags] store and defaults apply: the default flag exists before any command made it."""
    path = write_config(
        f'[flags]\nstore = "sqlite:///{tmp_path}/other.db"\n'
        "[flags.defaults.seeded]\nenabled = true\nrollout = 5\n"
    )
    listed = json.loads(run(capsys, "list", "--json", "--config", path)[1])
    assert [(f["name"], f["rollout"]) for f in listed["flags"]] == [("seeded", 5)]
    assert (tmp_path / "other.db").exists()


def test_parsers() -> None:
    """Rule and variant options parse their small syntax, and refuse what they cannot read."""
    assert parse_rule("user not_in 1,2 rollout=5") == FlagRule(
        "user", "not_in", ["1", "2"], rollout=5
    )
    assert parse_rule("tenant equals a off").enabled is False
    assert parse_variant('big:3:{"rps": 9}') == Variant("big", 3, {"rps": 9})
    with pytest.raises(ConfigError):
        parse_rule("user in")
    with pytest.raises(ConfigError):
        parse_variant("x:heavy")


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], str]:
    """Write a buttress.toml in the scratch directory; its path."""

    def save(text: str) -> str:
        path = tmp_path / "buttress.toml"
        path.write_text(text)
        return str(path)

    return save
