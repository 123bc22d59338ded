"""What ``buttress run`` keeps in the state store: the outcome of every run, and an outbox of
failed runs for when the dead letter queue cannot take them.

Component ``buttress.runs`` of the ``StateStore`` (``<state_dir>/buttress.db``):

- ``runs``: name, command (JSON list, secrets masked), start, duration, attempts (JSON list of
  the attempts' statuses and durations), exit status, outcome, log file, host and pid. The
  newest ``RUNS_KEPT`` runs of each name are kept.
- ``run_outbox``: the dead-letter record of a failed run (JSON) that could not be added to the
  dead letter queue, to be moved there later.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from typing import Any

from buttress._redact import redact
from buttress.cli._runner import RunOutcome
from buttress.ops._state import StateStore

__all__ = ["RUNS_KEPT", "RunHistory", "dead_letter_record"]

RUNS_KEPT = 1000

_COMPONENT = "buttress.runs"
_STEPS = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        command TEXT NOT NULL,
        started REAL NOT NULL,
        duration REAL NOT NULL,
        attempts TEXT NOT NULL,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        log TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        host TEXT NOT NULL DEFAULT '',
        pid INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_name ON runs (name, id);
    CREATE TABLE run_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL,
        created REAL NOT NULL,
        record TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT ''
    );
    """,
)

_COLUMNS = "id, name, command, started, duration, attempts, status, outcome, log, reason, host, pid"


def _masked(command: tuple[str, ...]) -> list[str]:
    return [redact(arg) for arg in command]


def dead_letter_record(outcome: RunOutcome) -> dict[str, Any]:
    """A failed run as a dead-letter payload: enough to run it again later (``redacted`` is
    true when masking secrets changed the command, which then cannot be re-run as stored)."""
    command = _masked(outcome.command)
    return {
        "kind": "buttress.run",
        "name": outcome.name,
        "command": command,
        "redacted": command != list(outcome.command),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "started": outcome.started,
        "attempts": len(outcome.attempts),
        "status": outcome.status,
        "outcome": outcome.outcome,
        "log": outcome.log,
    }


class RunHistory:
    """The runs of ``buttress run`` in a ``StateStore``: ``record``, ``recent``, and the outbox
    of failed runs (``to_outbox``, ``outbox``)."""

    def __init__(self, store: StateStore, *, keep: int = RUNS_KEPT) -> None:
        self.store = store
        self.keep = keep
        store.register(_COMPONENT, _STEPS)

    def record(self, outcome: RunOutcome) -> int:
        """Store ``outcome`` (dropping that name's runs beyond the newest ``keep``); its id."""
        attempts = json.dumps([asdict(attempt) for attempt in outcome.attempts])
        with self.store.transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO runs ({_COLUMNS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    outcome.name,
                    json.dumps(_masked(outcome.command)),
                    outcome.started,
                    outcome.duration,
                    attempts,
                    outcome.status,
                    outcome.outcome,
                    outcome.log,
                    redact(outcome.reason),
                    socket.gethostname(),
                    os.getpid(),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.execute(
                "DELETE FROM runs WHERE name = ? AND id <= (SELECT id FROM runs "
                "WHERE name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (outcome.name, outcome.name, self.keep),
            )
        return run_id

    def recent(self, name: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` runs (of ``name``, or of every name), newest first."""
        where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM runs {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        keys = [column.strip() for column in _COLUMNS.split(",")]
        runs = [dict(zip(keys, row, strict=True)) for row in rows]
        for run in runs:
            run["command"] = json.loads(run["command"])
            run["attempts"] = json.loads(run["attempts"])
        return runs

    def to_outbox(self, run_id: int, record: dict[str, Any], created: float, error: str) -> int:
        """Keep a dead-letter ``record`` the queue did not take (``error`` says why)."""
        return self.store.execute(
            "INSERT INTO run_outbox (run_id, created, record, error) VALUES (?, ?, ?, ?)",
            (run_id, created, json.dumps(record), redact(error)),
        )

    def outbox(self) -> list[dict[str, Any]]:
        """The dead-letter records waiting in the outbox, oldest first."""
        rows = self.store.query(
            "SELECT id, run_id, created, record, error FROM run_outbox ORDER BY id"
        )
        return [
            {"id": i, "run_id": r, "created": c, "record": json.loads(rec), "error": e}
            for i, r, c, rec, e in rows
        ]
