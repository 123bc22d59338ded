"""``buttress dlq list|show|retry|edit|discard|purge|stats|worker``: the dead letter queue.

The commands open the queue directly (``--url``, else ``[dlq] url`` in ``buttress.toml``, else
``dlq.db`` in the server's ``state_dir``), without the ops server. Changes are written to the
ops server's audit log (``buttress.db`` in ``state_dir``) with ``--actor`` (default
``user@host``) and ``--reason``. Batch actions (``retry`` and ``purge`` by filter) show a
progress bar on a terminal; ``purge`` asks before deleting unless ``--yes``. ``--json`` prints
JSON. Exit status: 0 done, 1 a record's status refused the action or the store failed, 2 bad
input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer

from buttress.cli import _dlq_render as render
from buttress.cli._dlq_options import (
    ActorOption,
    ClassOption,
    ErrorTypeOption,
    IdArg,
    JsonOption,
    QueueOption,
    ReasonOption,
    Session,
    SinceOption,
    StatusOption,
    UntilOption,
    UrlOption,
    opened,
    options_filter,
    print_json,
    stopping,
)
from buttress.cli._options import ConfigOption, ProfileOption
from buttress.errors import ConfigError, DeadLetterError

if TYPE_CHECKING:
    from buttress.dlq import Filter

__all__ = ["dlq_app"]

dlq_app = typer.Typer(
    help="Inspect and repair the dead letter queue (the queue set in buttress.toml).",
    no_args_is_help=True,
)


@dlq_app.command("list")
def list_letters(
    queue: QueueOption = None,
    status: StatusOption = None,
    classification: ClassOption = None,
    error_type: ErrorTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="records per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page (from the last one)")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dead letters, newest first, with filters; one page at a time."""
    found = options_filter(queue, status, classification, error_type, since, until)
    with opened(config, profile, url) as session:
        page = session.dlq.list(found, limit=limit, cursor=cursor)
    if as_json:
        print_json({"items": [item.to_dict() for item in page.items], "cursor": page.cursor})
        return
    render.letter_table(_console(), page.items, page.cursor)


@dlq_app.command("show")
def show_letter(
    id: IdArg,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """One dead letter: payload, headers, error and traceback, history."""
    with opened(config, profile, url) as session:
        letter = session.dlq.get(id)
    if letter is None:
        typer.echo(f"buttress dlq: no dead letter with id {id!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        print_json(letter.to_dict())
        return
    render.show(_console(), letter)


def _brief(letter: Any) -> dict[str, Any]:
    return {"status": letter.status.value, "attempts": letter.attempts, "note": letter.note}


@dlq_app.command("retry")
def retry(
    ids: Annotated[
        list[str] | None, typer.Argument(help="dead letter ids (or use filters)")
    ] = None,
    queue: QueueOption = None,
    status: StatusOption = None,
    classification: ClassOption = None,
    error_type: ErrorTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    all_: Annotated[bool, typer.Option("--all", help="every pending and parked one")] = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make dead letters due now: the given ids, or every pending or parked one matching the
    filters (``--all``: without filters)."""
    found = options_filter(queue, status, classification, error_type, since, until)
    if ids and found.to_dict():
        _usage("retry", "give ids or filters, not both")
    if not ids and not found.to_dict() and not all_:
        _usage("retry", "give ids, filters, or --all")
    with opened(config, profile, url, actor) as session:
        if ids:
            done = _each(session, "retry", ids, session.dlq.retry, reason)
            _print_result(as_json, {"retried": done}, f"retried {len(done)}: due now")
            return
        result = _batch(session, "retry_many", found, reason, as_json)
    _print_result(as_json, result, f"retried {result['count']}: due now")


def _usage(command: str, message: str) -> NoReturn:
    """Say what is wrong with the command line, and exit 2."""
    typer.echo(f"buttress dlq {command}: {message}", err=True)
    raise typer.Exit(2)


def _print_result(as_json: bool, data: Any, text: str) -> None:
    """Print the outcome: ``data`` as JSON with --json, else ``text``."""
    if as_json:
        print_json(data)
    else:
        typer.echo(text)


def _each(
    session: Session, action: str, ids: list[str], apply: Callable[[str], Any], reason: str | None
) -> list[dict[str, Any]]:
    """``apply`` each id in turn, each change audited as ``dlq.<action>``; the records after."""
    done = []
    for id in ids:
        letter = apply(id)
        session.audit(f"dlq.{action}", f"{session.dlq.name}/{id}", None, _brief(letter), reason)
        done.append(letter.to_dict())
    return done


def _batch(
    session: Session,
    action: str,
    found: Filter,
    reason: str | None,
    quiet: bool,
    ids: list[str] | None = None,
) -> dict[str, Any]:
    """``action`` (``retry_many`` or ``purge``) on every record ``found`` matches (of ``ids``
    when given: those a person confirmed), a chunk at a time under a progress bar (unless
    ``quiet``), audited; the action, filter and count."""
    dlq = session.dlq
    if ids is None:
        ids = render.matching_ids(dlq, found)
    method = dlq.purge if action == "purge" else dlq.retry_many
    verb = "purging" if action == "purge" else "retrying"
    with render.progress(f"{verb} dead letters", len(ids), enabled=not quiet) as advance:
        count = render.in_batches(ids, found, method, advance)
    after = {"filter": found.to_dict(), "count": count}
    session.audit(f"dlq.{action}", dlq.name, None, after, reason)
    return {"action": action, **after}


@dlq_app.command("edit")
def edit(
    id: IdArg,
    payload: Annotated[str | None, typer.Option(help="the new payload, as JSON")] = None,
    payload_file: Annotated[
        Path | None, typer.Option(help="a file holding the new payload (JSON)", dir_okay=False)
    ] = None,
    then_retry: Annotated[bool, typer.Option("--retry", help="then make it due now")] = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a pending or parked dead letter's payload (from --payload, --payload-file, or
    your $EDITOR), then optionally retry it."""
    with opened(config, profile, url, actor) as session:
        dlq = session.dlq
        letter = dlq.get(id)
        if letter is None:
            raise DeadLetterError(f"no dead letter with id {id!r}")
        text = payload
        if payload_file is not None:
            text = payload_file.read_text()
        if text is None:
            text = click.edit(json.dumps(letter.payload, indent=2, ensure_ascii=False) + "\n")
            if text is None:
                typer.echo("buttress dlq edit: nothing saved, nothing changed", err=True)
                raise typer.Exit(1)
        try:
            new = json.loads(text)
        except ValueError as exc:
            raise ConfigError("payload", text[:80], f"must be JSON ({exc})") from None
        after = dlq.edit(id, new)
        if then_retry:
            after = dlq.retry(id)
        before = {**_brief(letter), "payload": letter.payload}
        session.audit(
            "dlq.edit", f"{dlq.name}/{id}", before, {**_brief(after), "payload": new}, reason
        )
    _print_result(as_json, after.to_dict(), f"{id}: payload replaced ({after.status.value})")


@dlq_app.command("discard")
def discard(
    ids: Annotated[list[str], typer.Argument(help="dead letter ids")],
    reason: Annotated[str, typer.Option(help="why (kept on the record and in the audit log)")],
    actor: ActorOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give up on open dead letters, for a reason (kept until cleanup)."""
    with opened(config, profile, url, actor) as session:
        done = _each(session, "discard", ids, lambda id: session.dlq.discard(id, reason), reason)
    _print_result(as_json, {"discarded": done}, f"discarded {len(done)}")


@dlq_app.command("purge")
def purge(
    queue: QueueOption = None,
    status: StatusOption = None,
    classification: ClassOption = None,
    error_type: ErrorTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    all_: Annotated[bool, typer.Option("--all", help="every record, whatever its status")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the dead letters matching the filters for good (``--all``: every one); asks
    first unless ``--yes``."""
    found = options_filter(queue, status, classification, error_type, since, until)
    if not found.to_dict() and not all_:
        _usage("purge", "give filters, or --all")
    with opened(config, profile, url, actor) as session:
        # The records counted for the question are the ones deleted: one that arrives while
        # the question waits was not confirmed, and stays.
        ids = render.matching_ids(session.dlq, found)
        if not yes:
            if not sys.stdin.isatty():
                _usage("purge", f"{len(ids)} match; add --yes to delete")
            typer.confirm(f"Delete {len(ids)} dead letters for good?", abort=True, err=True)
        result = _batch(session, "purge", found, reason, as_json, ids)
    _print_result(as_json, result, f"purged {result['count']}")


@dlq_app.command("stats")
def stats(
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Counts by queue and status, classifications, error types, oldest pending, arrivals."""
    with opened(config, profile, url) as session:
        current = session.dlq.stats()
    if as_json:
        print_json(current.to_dict())
        return
    render.stats(_console(), current)


@dlq_app.command("worker")
def worker(
    queues: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="only these queues")
    ] = None,
    handler: Annotated[
        list[str] | None,
        typer.Option(help="queue=module.function, added to [dlq.handlers] (repeatable)"),
    ] = None,
    idle: Annotated[float, typer.Option(min=0.01, help="seconds to wait when none is due")] = 1.0,
    url: UrlOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Run a worker until Ctrl-C: due messages go through their queue's handler."""
    from buttress.config._schema import resolve

    with opened(config, profile, url) as session:
        dlq = session.dlq
        for spec in handler or []:
            queue, _, path = spec.partition("=")
            try:
                fn = resolve(path) if queue and path else None
            except LookupError as exc:
                raise ConfigError("handler", spec, str(exc)) from None
            if not callable(fn):
                raise ConfigError("handler", spec, "must be queue=module.function")
            dlq.handler(queue)(fn)
        if not dlq.handlers:
            _usage("worker", "no handlers ([dlq.handlers] or --handler)")
        names = ", ".join(sorted(queues or dlq.handlers))
        typer.echo(f"buttress dlq worker: {names} on {dlq.backend.url}; Ctrl-C stops", err=True)
        with stopping() as stop:
            report = dlq.worker(queues=queues).run(stop=stop, idle=idle)
    typer.echo(
        f"taken {report.taken}, resolved {report.resolved}, retried {report.retried}, "
        f"parked {report.parked}",
        err=True,
    )


def _console() -> Any:
    from buttress.cli import _render

    return _render.console(False)
