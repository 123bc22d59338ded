"""The strategy contract: what a source of backups does, and what it is given to do it.

A source (``Files``, ``SQLiteDatabase``, ``PostgresDump``, ``PostgresPITR``) makes a backup
into named artifacts through a ``BackupJob``, restores a chain of backups through a
``RestoreJob``, checks a restored copy, and provides a scratch target for drills. Its
``spec()`` is plain JSON without secrets, stored in the catalog so that the CLI and scheduled
jobs can make the next backup of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from buttress._clock import Clock
from buttress.backup._model import Backup, CheckResult
from buttress.backup._reader import ArtifactReader
from buttress.backup._stream import ArtifactWriter
from buttress.errors import ConfigError

__all__ = ["BackupJob", "RestoreJob", "Source", "source_from_spec"]

OpenWriter = Callable[[str], AbstractContextManager[ArtifactWriter]]
OpenReader = Callable[[Backup, str], AbstractContextManager[ArtifactReader]]


def _ignore(_: int) -> None:
    pass


@dataclass
class BackupJob:
    """A backup being made: write artifacts with ``artifact(name)``; read the reference
    backup's (``reference``: the parent of an incremental, the full of a differential) with
    ``open(backup, name)``; report bytes read with ``progress``; set ``data_time`` (the
    consistency point) and fill ``stats``. ``previous`` is the newest completed backup of the
    name (any kind), which a full backup may take what it learnt from (file hashes)."""

    backup: Backup
    reference: Backup | None
    artifact: OpenWriter
    open: OpenReader
    clock: Clock
    progress: Callable[[int], None] = _ignore
    stats: dict[str, Any] = field(default_factory=dict)
    data_time: float | None = None
    previous: Backup | None = None


@dataclass
class RestoreJob:
    """A restore: ``chain`` is the full backup first and the one asked for last; ``target``
    is a directory (or a database DSN); ``options`` holds strategy-specific settings
    (``target_time``, ``owner``, ``jobs``)."""

    chain: tuple[Backup, ...]
    target: str
    force: bool
    open: OpenReader
    clock: Clock
    progress: Callable[[int], None] = _ignore
    options: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def backup(self) -> Backup:
        """The backup being restored (the last of the chain)."""
        return self.chain[-1]


@runtime_checkable
class Source(Protocol):
    """What can be backed up: files, a SQLite database, a PostgreSQL database or cluster."""

    strategy: ClassVar[str]
    incremental: ClassVar[bool]
    target_kind: ClassVar[str]
    """``directory`` (restores refuse a non-empty one) or ``database``."""

    def spec(self) -> dict[str, Any]:
        """How to build this source again, as JSON-ready data without secrets."""

    def backup(self, job: BackupJob) -> None:
        """Write the backup's artifacts."""

    def restore(self, job: RestoreJob) -> None:
        """Rebuild ``job.chain`` at ``job.target``."""

    def check(self, job: RestoreJob) -> list[CheckResult]:
        """Checks of a copy restored at ``job.target`` (deep verify and drills)."""

    def scratch(self) -> AbstractContextManager[str]:
        """A scratch target for a trial restore, removed on exit."""

    def query(self, target: str, sql: str) -> object:
        """The first column of the first row of ``sql`` run on a restored copy."""

    def freshness(self, target: str) -> float | None:
        """The time of the newest data in a restored copy, if the source can tell."""


_FACTORIES: dict[str, Callable[[dict[str, Any]], Source]] = {}


def register(strategy: str, factory: Callable[[dict[str, Any]], Source]) -> None:
    """Make ``source_from_spec`` build ``strategy`` sources with ``factory``."""
    _FACTORIES[strategy] = factory


def source_from_spec(strategy: str, spec: dict[str, Any]) -> Source:
    """The source a stored spec describes."""
    from buttress.backup import _files, _pitr, _postgres, _sqlite  # noqa: F401  (register)

    try:
        factory = _FACTORIES[strategy]
    except KeyError:
        raise ConfigError("strategy", strategy, f"must be one of {sorted(_FACTORIES)}") from None
    return factory(spec)


def lines(reader: ArtifactReader) -> Iterator[bytes]:
    """The lines of a decoded artifact, without their line ends."""
    rest = b""
    while block := reader.read(1 << 20):
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest
