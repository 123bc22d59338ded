"""Options and helpers shared by the commands: ``--config``, ``--profile``, loading the file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from buttress.cli import _render

if TYPE_CHECKING:
    from buttress.config import Config

__all__ = ["ConfigOption", "ProfileOption", "load_or_exit"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="configuration file (default: $BUTTRESS_CONFIG, else ./buttress.toml if present)",
        dir_okay=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="production, development or testing (default: $BUTTRESS_PROFILE, the file's "
        "profile key, else production)",
    ),
]


def load_or_exit(path: Path | None, profile: str | None, no_color: bool = False) -> Config:
    """The configuration, or every error printed to stderr and exit status 2."""
    from buttress.config import ConfigFileError, load_config

    try:
        return load_config(path, profile=profile)
    except ConfigFileError as exc:
        _render.errors(_render.console(no_color, stderr=True), exc)
        raise typer.Exit(2) from None
