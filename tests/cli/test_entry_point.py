"""The `buttress` entry point: typer app, `python -m buttress`, and the missing-extra message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from buttress.cli import MISSING_EXTRA, main


def test_without_typer_main_says_which_extra_to_install(capsys, monkeypatch) -> None:
    """If typer cannot be imported, main prints one line naming the extra and returns 2."""
    monkeypatch.setitem(sys.modules, "typer", None)
    assert main(["health"]) == 2
    captured = capsys.readouterr()
    assert captured.err == MISSING_EXTRA + "\n"
    assert captured.out == ""


def test_without_rich_in_a_fresh_process() -> None:
    """A process where rich is not importable gets the same one line and exit status 2."""
    code = (
        "import sys; sys.modules['rich'] = None; from buttress.cli import main; "
        "sys.exit(main(['--help']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert done.stderr == (
        "buttress: the command line needs the 'cli' extra: pip install 'buttress[cli]'\n"
    )


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m buttress --help` lists the commands."""
    done = subprocess.run(
        [sys.executable, "-m", "buttress", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    for command in ("demo", "health", "config"):
        assert command in done.stdout


def test_demo_keeps_its_options(capsys) -> None:
    """`buttress demo` takes --duration, --rate, --virtual and --seed as before."""
    assert main(["demo", "--duration", "2", "--rate", "10", "--virtual", "--seed", "3"]) == 0
    assert "summary:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bogus"], ["health", "--bogus"], []])
def test_usage_errors_exit_2(argv, capsys) -> None:
    """Unknown commands and options, or no command, exit 2 with usage help."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Usage" in captured.err + captured.out
