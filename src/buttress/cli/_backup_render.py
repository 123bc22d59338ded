"""What the backup commands print: tables, results, byte sizes and the progress display."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from buttress.backup import Backup, DrillResult, PruneResult, VerifyResult

__all__ = [
    "backups",
    "drills",
    "human",
    "progress",
    "prune",
    "show",
    "verify",
    "when",
    "write_json",
]


def human(size: float | None) -> str:
    """``1.5 MiB``-style sizes."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def when(epoch: float | None) -> str:
    """A UTC time, to the second."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def seconds(value: float | None) -> str:
    """``12.3s``, or ``-``."""
    return "-" if value is None else f"{value:.1f}s"


def write_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def backups(out: Console, records: Sequence[Backup]) -> None:
    """One line per backup."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    widest = max((len(b.id) for b in records), default=2)
    table.add_column("id", no_wrap=True, min_width=widest)  # ids are copied: never cut them
    for column in ("kind", "status", "started", "took", "size", "parent"):
        table.add_column(column, no_wrap=True)
    for b in records:
        table.add_row(
            b.id,
            b.kind,
            b.status,
            when(b.started_at),
            seconds(b.duration),
            human(b.size),
            b.parent or "-",
        )
    out.print(table if records else "no backups")


def show(out: Console, b: Backup) -> None:
    """Every field of one backup."""
    rows = [
        ("id", b.id),
        ("name", b.name),
        ("kind", b.kind),
        ("strategy", b.strategy),
        ("status", b.status),
        ("started", when(b.started_at)),
        ("finished", when(b.finished_at)),
        ("data as of", when(b.data_time)),
        ("parent", b.parent or "-"),
        ("size", human(b.size)),
        ("compression", b.compression),
        ("key id", b.key_id or "not encrypted"),
        ("keep until", when(b.keep_until)),
        ("tags", ", ".join(b.tags) or "-"),
    ]
    if b.error:
        rows.append(("error", b.error))
    for name, value in rows:
        out.print(f"{name:>12}: {value}")
    for a in b.artifacts:
        out.print(f"{'artifact':>12}: {a.name}  {human(a.size)}  sha256 {a.sha256}")
    stats = {k: v for k, v in b.stats.items() if k != "source"}
    if stats:
        out.print(f"{'stats':>12}: {json.dumps(stats, default=str)}")


def verify(out: Console, result: VerifyResult) -> None:
    """Each check, then ok or FAILED."""
    for c in result.checks:
        mark = "[green]ok[/]" if c.ok else "[bold red]FAIL[/]"
        out.print(f"{mark}  {c.name}: {c.detail}")
    out.print("verified: ok" if result.ok else "[bold red]verification FAILED[/]")


def drills(out: Console, results: Sequence[DrillResult]) -> None:
    """One line per drill."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("started", "name", "backup", "result", "RTO", "RPO", "error"):
        table.add_column(column, no_wrap=column != "error")
    for d in results:
        table.add_row(
            when(d.started_at),
            d.name,
            d.backup_id or "-",
            "ok" if d.ok else "FAILED",
            seconds(d.rto_seconds),
            seconds(d.rpo_seconds),
            d.error or "",
        )
    out.print(table if results else "no drills yet")


def prune(out: Console, result: PruneResult) -> None:
    """What goes (or would go), and the reasons the rest stays."""
    verb = "would delete" if result.dry_run else "deleted"
    for backup_id in result.deleted:
        out.print(f"{verb} {backup_id}")
    for backup_id, reasons in sorted(result.kept.items()):
        out.print(f"keep {backup_id}: {', '.join(reasons)}")
    out.print(
        f"{verb} {len(result.deleted)} backups ({human(result.freed_bytes)})"
        + (f", {result.wal_deleted} WAL files" if result.wal_deleted else "")
    )


@contextlib.contextmanager
def progress(
    description: str, *, enabled: bool, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A progress display on stderr (bytes, speed, elapsed); yields ``advance(n_bytes)``."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
