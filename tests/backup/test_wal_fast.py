"""`buttress wal push|fetch` through the fast path (no typer): same results as the typer
commands, the same options, and none of the command-line framework loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.cli import _backup_wal, _walfast, main
from buttress.cli._app import run as run_typer
from buttress.cli._backup_options import Compression

SEGMENT = "000000010000000000000001"
Runner = Callable[[Sequence[str]], int]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory, with no archive from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(_walfast.ARCHIVE_VARIABLE, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _scenario(root: Path, runner: Runner, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Pushes and fetches covering every outcome; what each returned and left behind."""
    root.mkdir()
    key = root / "key"
    key.write_text("11" * 32)
    monkeypatch.setenv("WAL_TEST_KEY", "22" * 32)
    segment = root / SEGMENT
    segment.write_bytes(os.urandom(40_000))
    arch, plain = ["--archive", str(root / "arch")], [f"--archive={root / 'plain'}"]
    results: list[object] = [
        runner(["wal", "push", str(segment), SEGMENT, *arch, "--key-file", str(key)]),
        runner(["wal", "push", str(segment), SEGMENT, *arch, "--key-file", str(key)]),
        runner(["wal", "push", str(segment), SEGMENT, *plain, "--compression", "gzip"]),
        runner(["wal", "push", str(segment), "not-a-wal-name", *plain]),
        runner(["wal", "push", str(segment), SEGMENT, *plain, "--key-file", "k", "--key-env", "V"]),
        runner(["wal", "push", str(segment), SEGMENT, *plain, "--key-env", "UNSET_VARIABLE"]),
        runner(["wal", "fetch", SEGMENT, str(root / "got"), *arch, "--key-file", str(key)]),
        runner(["wal", "fetch", SEGMENT, str(root / "nokey"), *arch]),
        runner(["wal", "fetch", SEGMENT, str(root / "wrong"), *arch, "--key-env", "WAL_TEST_KEY"]),
        runner(["wal", "fetch", "000000010000000000000009", str(root / "none"), *plain]),
        runner(["wal", "fetch", SEGMENT, str(root / "gz"), *plain]),
    ]
    segment.write_bytes(b"different content")
    results.append(runner(["wal", "push", str(segment), SEGMENT, *plain]))
    monkeypatch.setenv(_walfast.ARCHIVE_VARIABLE, str(root / "plain"))
    results.append(runner(["wal", "fetch", SEGMENT, str(root / "env")]))
    monkeypatch.delenv(_walfast.ARCHIVE_VARIABLE)
    results.append(sorted(p.name for p in root.rglob("*") if p.is_file() and p.name != "key"))
    results.append((root / "got").read_bytes() == (root / "gz").read_bytes())
    return results


def test_fast_path_gives_what_the_typer_commands_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every outcome (stored, already there, different content, bad name, bad key options,
    fetched, no key, wrong key, missing, env archive) has the same exit status and leaves the
    same files through the fast path as through typer."""
    fast = _scenario(tmp_path / "fast", main, monkeypatch)
    fast_err = capsys.readouterr().err
    slow = _scenario(tmp_path / "slow", run_typer, monkeypatch)
    slow_err = capsys.readouterr().err
    assert fast == slow
    assert fast[:13] == [0, 0, 0, 1, 2, 2, 0, 200, 200, 1, 0, 1, 0]
    assert fast[-1] is True
    assert fast_err.replace(str(tmp_path / "fast"), "") == slow_err.replace(
        str(tmp_path / "slow"), ""
    )


@pytest.mark.parametrize(
    "args",
    [
        ["push", "--help"],
        ["fetch", "-h"],
        ["push", "a", SEGMENT],  # no archive
        ["push", "a", SEGMENT, "--archive", "x", "--bogus", "1"],
        ["push", "a", "--archive", "x"],
        ["push", "a", SEGMENT, "extra", "--archive", "x"],
        ["push", "a", SEGMENT, "--archive", "x", "--compression", "lz4"],
        ["fetch", SEGMENT, "p", "--archive", "x", "--compression", "zstd"],
        ["push", ".", SEGMENT, "--archive", "x"],  # a directory as the file
        ["push", "a", SEGMENT, "--archive"],
        ["prune", "a", "b", "--archive", "x"],
    ],
)
def test_fast_path_leaves_the_rest_to_typer(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Help, usage errors and what the parser does not know go to the typer command, which
    prints its help (exit 0) or a usage error (exit 2)."""
    assert _walfast.run(args[0], args[1:]) is None
    code = main(["wal", *args])
    out = capsys.readouterr()
    assert code == (0 if "--help" in args else 2)
    assert ("Usage" in out.out) if code == 0 else ("Error" in out.err)


def test_fast_path_knows_the_typer_options() -> None:
    """The fast path accepts exactly the options of the typer commands, reads the archive
    from the same variable, and exits with the same status for a damaged file."""
    import typer

    from buttress.cli._app import app

    group = typer.main.get_command(app).commands["wal"]  # type: ignore[attr-defined]
    for name, known in (("push", _walfast.PUSH_OPTIONS), ("fetch", _walfast.FETCH_OPTIONS)):
        params = group.commands[name].params
        flags = {opt for p in params for opt in p.opts if opt.startswith("--")}
        assert flags == set(known), name
        assert [p.envvar for p in params if "--archive" in p.opts] == [_walfast.ARCHIVE_VARIABLE]
        assert sum(1 for p in params if not p.opts[0].startswith("-")) == 2
    assert sorted(c.value for c in Compression) == sorted(_walfast.COMPRESSIONS)
    assert _walfast.FETCH_DAMAGED == _backup_wal.FETCH_DAMAGED


def test_fast_path_loads_no_command_line_framework(tmp_path: Path) -> None:
    """A push in a fresh process imports neither typer, rich nor click, nor the catalog,
    the strategies or the other command modules."""
    segment = tmp_path / SEGMENT
    segment.write_bytes(b"wal")
    code = (
        "import sys; from buttress.cli import main; "
        f"code = main(['wal', 'push', {str(segment)!r}, {SEGMENT!r}, '--archive', "
        f"{str(tmp_path / 'arch')!r}]); "
        "heavy = ('typer', 'rich', 'click', 'buttress.backup._catalog', 'buttress.backup._files', "
        "'buttress.backup._pitr', 'buttress.cli._app', 'sqlite3'); "
        "print(code, sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "[]"]
    assert (tmp_path / "arch" / f"{SEGMENT}.json").exists()


def test_a_repeated_option_takes_the_last_value() -> None:
    """As with click, the last of a repeated option wins."""
    args = ["p", SEGMENT, "--archive", "x", "--archive=y"]
    assert _walfast.parse(args, _walfast.PUSH_OPTIONS) == (("p", SEGMENT), {"--archive": "y"})


_OPTION_VALUES = st.text("abcxyz/._-0123456789", min_size=1, max_size=8).filter(
    lambda v: not v.startswith("-")
)


@given(
    options=st.dictionaries(st.sampled_from(sorted(_walfast.PUSH_OPTIONS)), _OPTION_VALUES),
    positional=st.tuples(_OPTION_VALUES, _OPTION_VALUES),
    equals=st.lists(st.booleans(), min_size=4, max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_parse_reads_options_in_any_order_and_form(
    options: dict[str, str],
    positional: tuple[str, str],
    equals: list[bool],
    order: object,
) -> None:
    """Options in any order, as `--name value` or `--name=value`, between or around the two
    arguments, parse to the same arguments and values."""
    import random

    assert isinstance(order, random.Random)
    groups: list[list[str]] = [
        [f"{name}={value}"] if eq else [name, value]
        for (name, value), eq in zip(options.items(), equals, strict=False)
    ]
    slots = len(groups) + 1
    first, second = sorted(order.randrange(slots) for _ in range(2))
    args: list[str] = []
    for index in range(slots):
        if index == first:
            args.append(positional[0])
        if index == second:
            args.append(positional[1])
        if index < len(groups):
            args.extend(groups[index])
    assert _walfast.parse(args, _walfast.PUSH_OPTIONS) == (positional, options)
