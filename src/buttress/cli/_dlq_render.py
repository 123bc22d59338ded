"""What ``buttress dlq`` prints (tables, one record, stats) and its batch actions with their
progress bars."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from buttress.dlq import DeadLetter, DeadLetterQueue, Filter, Stats

__all__ = ["CHUNK", "in_batches", "letter_table", "matching_ids", "progress", "show", "stats"]

CHUNK = 500
"""Records per step of a batch action (one write each)."""
STYLES = {"pending": "yellow", "retrying": "cyan", "parked": "bold red", "resolved": "green"}


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def letter_table(out: Console, letters: tuple[DeadLetter, ...], cursor: str | None) -> None:
    """The records as a table, newest first; the cursor of the next page, if any."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "queue", "status", "class", "tries", "error", "first failed", "next"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        status = Text(letter.status.value, style=STYLES.get(letter.status.value, ""))
        error = _clip(f"{letter.error.type}: {letter.error.message}")
        table.add_row(
            letter.id,
            letter.queue,
            status,
            letter.classification.value,
            f"{letter.attempts}/{letter.max_attempts}",
            error,
            _when(letter.first_failed_at),
            _when(letter.next_attempt_at),
        )
    out.print(table)
    if not letters:
        out.print("no dead letters match")
    if cursor is not None:
        out.print(f"more: --cursor {cursor}")


def show(out: Console, letter: DeadLetter) -> None:
    """One record: its fields, payload, headers, history and traceback."""
    out.print(f"[bold]dead letter {letter.id}[/bold] in {letter.queue}: {letter.status.value}")
    rows = [
        ("classification", letter.classification.value),
        ("attempts", f"{letter.attempts} of {letter.max_attempts}"),
        ("key", letter.key or "-"),
        ("first failed", _when(letter.first_failed_at)),
        ("last failed", _when(letter.last_failed_at)),
        ("next attempt", _when(letter.next_attempt_at)),
        ("error", f"{letter.error.type}: {letter.error.message}"),
    ]
    if letter.note:
        rows.append(("note", letter.note))
    for name, value in rows:
        out.print(f"  {name:15} {value}", markup=False)
    out.print("payload:")
    out.print(json.dumps(letter.payload, indent=2, ensure_ascii=False), markup=False)
    if letter.headers:
        out.print("headers:")
        for name, value in sorted(letter.headers.items()):
            out.print(f"  {name}: {value}", markup=False)
    out.print("history:")
    for attempt in letter.history:
        line = f"  #{attempt.number} {_when(attempt.at)} {attempt.classification.value}"
        out.print(f"{line} {attempt.error_type}: {_clip(attempt.message, 100)}", markup=False)
    if letter.error.traceback:
        out.print("traceback:")
        out.print(letter.error.traceback.rstrip(), markup=False)


def stats(out: Console, current: Stats) -> None:
    """Counts by status and by queue, then classifications, error types, age and rate."""
    statuses = list(current.by_status)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("queue")
    for status in statuses:
        table.add_column(status, justify="right")
    for queue, counts in sorted(current.by_queue.items()):
        table.add_row(queue, *(str(counts.get(s, 0)) for s in statuses))
    table.add_row(Text("total", style="bold"), *(str(current.by_status[s]) for s in statuses))
    out.print(table)
    for title, counts in (
        ("open by classification", current.by_classification),
        ("open by error type", current.by_error_type),
    ):
        if counts:
            text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda i: -i[1]))
            out.print(f"{title}: {text}", markup=False)
    age = current.oldest_pending_age
    out.print(f"oldest pending: {'-' if age is None else f'{age:.0f} s'}")
    out.print(f"arrival rate: {current.arrival_rate:.3g}/s over {current.rate_window:g} s")


def matching_ids(dlq: DeadLetterQueue, filter: Filter) -> list[str]:
    """Every id matching ``filter``, newest first."""
    ids: list[str] = []
    cursor = None
    while True:
        page = dlq.list(filter, limit=1000, cursor=cursor)
        ids.extend(letter.id for letter in page.items)
        cursor = page.cursor
        if cursor is None:
            return ids


def in_batches(
    ids: list[str],
    filter: Filter,
    action: Callable[[Filter], int],
    advance: Callable[[int], None],
) -> int:
    """Apply ``action`` (``retry_many`` or ``purge``) to ``ids`` ``CHUNK`` at a time, each
    step also bound by ``filter``; calls ``advance(n)`` after each; how many it changed."""
    done = 0
    fields = filter.to_dict()
    fields.pop("ids", None)
    for start in range(0, len(ids), CHUNK):
        chunk = tuple(ids[start : start + CHUNK])
        done += action(Filter(**fields, ids=chunk))
        advance(len(chunk))
    return done


@contextlib.contextmanager
def progress(description: str, total: int, *, enabled: bool) -> Iterator[Callable[[int], Any]]:
    """A progress bar on stderr (records done of ``total``); yields ``advance(n)``. Nothing is
    drawn when disabled or when stderr is not a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
