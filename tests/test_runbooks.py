"""Every `buttress ...` command quoted in the runbooks exists in the CLI, with the options used."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

typer_main = pytest.importorskip("typer.main")

from buttress.cli._app import app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    *sorted((ROOT / "docs" / "runbooks").glob("*.md")),
    ROOT / "docs" / "reference" / "cli.md",
    ROOT / "docs" / "getting-started.md",
]
FENCE = re.compile(r"^[ \t]*```([^\n]*)\n(.*?)^[ \t]*```", re.S | re.M)
SHELL = frozenset({"", "bash", "sh", "shell", "console"})
INLINE = re.compile(r"`(buttress [^`]+)`")
# `buttress` as a command: not part of a path, a package name or a file name.
START = re.compile(r"(?<![\w./\[-])buttress\s+(?=[a-z])")


def _segments(line: str) -> list[str]:
    """The `buttress ...` commands in one shell line, each cut where the shell would end it."""
    found = []
    for match in START.finditer(line):
        rest = line[match.start() :]
        quote = line[match.start() - 1] if match.start() else ""
        if quote in ("'", '"'):  # archive_command = 'buttress wal push ...'
            rest = rest.split(quote, 1)[0]
        rest = re.split(r"\s#|\|\||&&|\||;", rest, maxsplit=1)[0]
        found.append(rest.strip())
    return found


def _commands(path: Path) -> list[str]:
    text = path.read_text()
    commands = []
    for language, block in FENCE.findall(text):
        if language.strip() not in SHELL:
            continue
        for line in block.replace("\\\n", " ").splitlines():
            commands += _segments(re.split(r"(?:^|\s)#", line, maxsplit=1)[0])
    prose = FENCE.sub("", text)
    for match in INLINE.finditer(prose):
        commands += _segments(" ".join(match.group(1).split()))
    return commands


def _quoted() -> list[tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), c) for p in PAGES for c in _commands(p)]


def _options(command: Any) -> set[str]:
    names: set[str] = {"--help"}
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts, param.secondary_opts)
    return names


def problems_of(line: str) -> list[str]:
    """What is wrong with one quoted command line: an unknown subcommand or option."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    command = typer_main.get_command(app)
    path = ["buttress"]
    rest = words[1:]
    while getattr(command, "commands", None):
        if not rest:
            return [f"{' '.join(path)} needs a subcommand"]
        name = rest.pop(0)
        sub = command.commands.get(name)  # type: ignore[attr-defined]
        if sub is None:
            return [f"{' '.join(path)} has no subcommand {name!r}"]
        command, path = sub, [*path, name]
    allowed = _options(command)
    found = []
    for word in rest:
        if word == "--":
            break  # the guarded command's own arguments follow (buttress run)
        if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-[\d.]+", word):
            option = word.split("=", 1)[0]
            if option not in allowed:
                found.append(f"{' '.join(path)} has no option {option}")
    return found


def test_runbooks_quote_commands() -> None:
    """Each runbook quotes buttress commands, so the check below is not vacuous."""
    quoted = _quoted()
    pages = {page for page, _ in quoted}
    for name in ("incident-response", "scaling", "troubleshooting", "disaster-recovery"):
        assert f"docs/runbooks/{name}.md" in pages
    assert len(quoted) > 40


@pytest.mark.parametrize(("page", "line"), _quoted())
def test_quoted_command_exists(page: str, line: str) -> None:
    """The command path exists and every option it uses is an option of that command."""
    assert problems_of(line) == [], f"{page}: {line}"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("buttress breaker reset payments", "no subcommand 'breaker'"),
        ("buttress dlq requeue --all", "no subcommand 'requeue'"),
        ("buttress health --group readiness --nope", "no option --nope"),
        ("buttress degrade set severe --reason x --ttl 60", "no option --ttl"),
        ("buttress dlq", "needs a subcommand"),
    ],
)
def test_checker_rejects_wrong_commands(line: str, problem: str) -> None:
    """A missing subcommand or an unknown option is reported, naming it."""
    assert any(problem in p for p in problems_of(line))


def test_checker_accepts_run_arguments_and_extraction_cuts_pipes() -> None:
    """Options after `--` belong to the guarded command; a pipe or comment ends a command."""
    assert problems_of("buttress run --lock nightly --retries 3 -- ./job.sh --force") == []
    segments = _segments("buttress backup drills --json | jq '.[]'  # history")
    assert segments == ["buttress backup drills --json"]
    assert _segments("archive_command = 'buttress wal push %p %f --archive /w'") == [
        "buttress wal push %p %f --archive /w"
    ]
