"""The typer application behind ``buttress``; ``run(argv)`` returns the exit status.

Commands: ``demo``, ``serve``, ``run``, ``health``, ``config check|show``, ``token create``,
``limits``, ``events``, and the groups ``breakers``, ``degrade``, ``flags``, ``dlq``, ``backup``
and ``wal``.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from buttress.cli import _render
from buttress.cli._backup import register as register_backup
from buttress.cli._breakers import breakers_app
from buttress.cli._degrade import degrade_app
from buttress.cli._dlq import dlq_app
from buttress.cli._events import events
from buttress.cli._flags import flags_app
from buttress.cli._limits import limits
from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit
from buttress.cli._run import RUN_SETTINGS, run_command
from buttress.cli._serve import serve, token_create

__all__ = ["app", "run"]

app = typer.Typer(
    name="buttress",
    help="Reliability toolkit for Python services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Validate the configuration, or show the effective one.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
token_app = typer.Typer(help="Create bearer tokens for the ops server.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(flags_app, name="flags")
app.add_typer(dlq_app, name="dlq")


class Group(enum.StrEnum):
    """The health check groups."""

    liveness = "liveness"
    readiness = "readiness"
    startup = "startup"


@app.command()
def demo(
    duration: Annotated[
        float | None,
        typer.Option(help="seconds to run (default: until Ctrl-C; 20 with --virtual)"),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="ops server port on 127.0.0.1 (taken: another free one)"
        ),
    ] = 8000,
    phase: Annotated[
        float, typer.Option(min=0.1, help="seconds of each upstream phase (healthy, errors...)")
    ] = 10.0,
    rate: Annotated[float, typer.Option(min=0.1, help="calls per second")] = 20.0,
    virtual: Annotated[
        bool,
        typer.Option(
            "--virtual",
            help="no server: the in-process scenario on a virtual clock, all at once",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="random seed for the upstream")] = 7,
) -> None:
    """Serve the ops dashboard while a workload calls a flaky local upstream through a pipeline.

    The upstream (a real HTTP service on another port) cycles healthy, errors, slow and down;
    the workload calls it through fallback, retry, circuit breaker and timeout. A status line
    every second, a summary at the end (after --duration seconds, or Ctrl-C).
    """
    if virtual:
        from buttress.cli.demo import run_demo

        summary = run_demo(
            duration=20.0 if duration is None else duration, rate=rate, virtual=True, seed=seed
        )
        raise typer.Exit(0 if summary.calls else 1)
    from buttress.cli._live import run_live_demo

    live = run_live_demo(port=port, duration=duration, rate=rate, phase=phase, seed=seed)
    raise typer.Exit(0 if live.calls else 1)


app.command()(serve)
app.command("run", **RUN_SETTINGS)(run_command)
token_app.command("create")(token_create)
app.add_typer(degrade_app, name="degrade")
app.add_typer(breakers_app, name="breakers")
app.command()(limits)  # buttress limits [--url ...]
app.command()(events)  # buttress events [--follow] [--kind ...]
register_backup(app)  # buttress backup ..., buttress wal push|fetch


@app.command()
def health(
    config: ConfigOption = None,
    group: Annotated[
        Group | None, typer.Option(help="run only this group's checks (default: every check)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the IETF application/health+json document")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also each check's key, type, groups and details"),
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="no colour (also when NO_COLOR is set)")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Run the configured health checks now; exit 0 on pass, 1 on warn, 2 on fail."""
    loaded = load_or_exit(config, profile, no_color)
    report = loaded.health.run_sync(None if group is None else group.value, fresh=True)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(verbose=verbose), indent=2) + "\n")
    else:
        _render.report(_render.console(no_color), report, verbose=verbose)
    raise typer.Exit(report.status.severity)


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="the file to check (default: $BUTTRESS_CONFIG, else ./buttress.toml)",
            dir_okay=False,
        ),
    ] = None,
    profile: ProfileOption = None,
) -> None:
    """Validate the configuration: print "ok" and a summary, or every error (exit 2)."""
    loaded = load_or_exit(file, profile, False)
    _render.summary(_render.console(False), loaded)


@config_app.command("show")
def config_show(
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of TOML")] = False,
) -> None:
    """Print the effective configuration (defaults, profile, file, environment), secrets
    masked, as TOML."""
    loaded = load_or_exit(config, profile, False)
    if as_json:
        sys.stdout.write(json.dumps(loaded.masked(), indent=2) + "\n")
        return
    where = str(loaded.path) if loaded.path is not None else "no file (defaults only)"
    sys.stdout.write(f"# {where}, profile {loaded.profile}; secrets masked\n")
    sys.stdout.write(loaded.to_toml())


def run(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit status instead of exiting."""
    command = typer.main.get_command(app)
    try:
        command.main(
            args=None if argv is None else list(argv), prog_name="buttress", standalone_mode=True
        )
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0  # pragma: no cover - standalone mode always exits
