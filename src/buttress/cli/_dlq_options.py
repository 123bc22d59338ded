"""Options and the session of ``buttress dlq``: opening the configured queue, auditing
changes in the ops audit log, filters from options, and stopping a worker on Ctrl-C."""

from __future__ import annotations

import getpass
import json
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from buttress.cli._options import load_or_exit
from buttress.errors import ConfigError, DeadLetterError, StoreError

if TYPE_CHECKING:
    from buttress.config import Config
    from buttress.dlq import DeadLetterQueue, Filter

__all__ = [
    "ActorOption",
    "ClassOption",
    "ErrorTypeOption",
    "IdArg",
    "JsonOption",
    "QueueOption",
    "ReasonOption",
    "Session",
    "SinceOption",
    "StatusOption",
    "UntilOption",
    "UrlOption",
    "opened",
    "options_filter",
    "print_json",
    "stopping",
]

UrlOption = Annotated[
    str | None, typer.Option(help="the queue's URL (default: [dlq] url, else state_dir/dlq.db)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
ReasonOption = Annotated[str | None, typer.Option(help="why, kept in the audit log")]
ActorOption = Annotated[
    str | None, typer.Option(help="who, kept in the audit log (default: user@host)")
]
QueueOption = Annotated[str | None, typer.Option("--queue", "-q", help="only this queue")]
StatusOption = Annotated[
    str | None, typer.Option(help="pending, retrying, parked, resolved or discarded")
]
ClassOption = Annotated[
    str | None,
    typer.Option(
        "--classification", help="transient, rate_limited, timeout, permanent, poison, unknown"
    ),
]
ErrorTypeOption = Annotated[str | None, typer.Option(help="the error's qualified type name")]
SinceOption = Annotated[float | None, typer.Option(help="first failed at or after (Unix time)")]
UntilOption = Annotated[float | None, typer.Option(help="first failed before (Unix time)")]
IdArg = Annotated[str, typer.Argument(help="the dead letter's id")]


class Session:
    """The loaded configuration, the opened queue and who acts."""

    def __init__(self, loaded: Config, dlq: DeadLetterQueue, actor: str | None) -> None:
        self.loaded = loaded
        self.dlq = dlq
        self.actor = actor or _default_actor()

    def audit(self, action: str, target: str, before: Any, after: Any, reason: str | None) -> None:
        """Append the change to the ops audit log; a failure to do so is reported, not fatal."""
        from buttress.ops import AuditLog, StateStore

        try:
            store = StateStore.in_directory(self.loaded.server.state_dir)
            try:
                AuditLog(store).append(
                    actor=self.actor,
                    action=action,
                    target=target,
                    before=before,
                    after=after,
                    client="cli",
                    reason=reason,
                )
            finally:
                store.close()
        except (StoreError, OSError) as exc:
            typer.echo(f"buttress dlq: done, but not audited: {exc}", err=True)


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def opened(
    config: Path | None, profile: str | None, url: str | None, actor: str | None = None
) -> Iterator[Session]:
    """The configured queue; errors print and exit (1: store or status, 2: bad input)."""
    from buttress.config._dlq import DLQSettings

    loaded = load_or_exit(config, profile)
    settings = loaded.dlq or DLQSettings()
    try:
        if url is not None:
            from dataclasses import replace

            settings = replace(settings, url=url)
        dlq = settings.open(state_dir=loaded.server.state_dir)
    except (ConfigError, StoreError) as exc:
        typer.echo(f"buttress dlq: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        yield Session(loaded, dlq, actor)
    except ConfigError as exc:
        typer.echo(f"buttress dlq: {exc}", err=True)
        raise typer.Exit(2) from None
    except (DeadLetterError, StoreError) as exc:
        typer.echo(f"buttress dlq: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        dlq.close()


def options_filter(
    queue: str | None,
    status: str | None,
    classification: str | None,
    error_type: str | None,
    since: float | None,
    until: float | None,
) -> Filter:
    from buttress.dlq import Filter

    try:
        return Filter(queue, status, classification, error_type, since, until)
    except ConfigError as exc:
        typer.echo(f"buttress dlq: {exc}", err=True)
        raise typer.Exit(2) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def stopping() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C or SIGTERM (the batch in hand finishes); a second
    Ctrl-C interrupts at once (the lease brings that batch back later)."""
    stop = threading.Event()

    def request(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        typer.echo("buttress dlq worker: stopping after this batch", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only (a test runner's thread)
        return
    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
