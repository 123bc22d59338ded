"""The SQLite schema of the dead letter queue, its statements, and rows <-> records.

One table, ``buttress_dlq``: ``seq`` is the id (never reused: ``buttress_dlq_meta`` holds the
counter), ``due_at`` is when a pending record is due or a retrying one's lease ends (NULL
otherwise) and is the one column the worker's query needs. Its partial index is on the due
time's ``DUE_BUCKET``-second bucket (``DUE``), not on the time itself: records added together
have first attempts spread by the backoff's jitter, and an index on the exact time would put
each of them on a different leaf page (every commit of a round of concurrent adds then wrote
one dirty page per add, twice the cost of the whole insert). In a bucket, rows follow in
insertion order, so a round touches a page or two per bucket. The worker walks the buckets in
order and sorts only inside each one, so it still takes records strictly by due time.
Idempotency keys are unique where set; ``first_failed_at`` is indexed for arrival rates and
time filters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from buttress.dlq._backend import Delivery, NewBatch, decode_payload
from buttress.dlq._records import (
    CLASSIFICATIONS,
    STATUSES,
    DeadLetter,
    ErrorInfo,
    Filter,
    decode_history,
)

__all__ = [
    "COLUMNS",
    "DUE",
    "DUE_BUCKET",
    "INSERT",
    "SCHEMA",
    "due_bucket",
    "insert_rows",
    "letter_of",
    "where",
]

DUE_BUCKET = 16
"""Seconds per bucket of the due index (changing it needs a new index name in ``SCHEMA``)."""
DUE = f"CAST(due_at / {DUE_BUCKET} AS INTEGER)"
"""The indexed expression; queries must spell it exactly so to use the index."""


def due_bucket(at: float) -> int:
    """The bucket of time ``at``, as SQLite computes ``DUE`` (truncating toward zero)."""
    return int(at / DUE_BUCKET)


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS buttress_dlq (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT,
    key TEXT,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    traceback TEXT NOT NULL,
    classification TEXT NOT NULL,
    history TEXT NOT NULL,
    first_failed_at REAL NOT NULL,
    last_failed_at REAL NOT NULL,
    due_at REAL,
    max_attempts INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    lease TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS buttress_dlq_key ON buttress_dlq (key) WHERE key IS NOT NULL;
DROP INDEX IF EXISTS buttress_dlq_due;
CREATE INDEX IF NOT EXISTS buttress_dlq_due_bucket ON buttress_dlq ({DUE})
    WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS buttress_dlq_first ON buttress_dlq (first_failed_at);
CREATE TABLE IF NOT EXISTS buttress_dlq_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO buttress_dlq_meta VALUES ('next_id', 0);
"""

COLUMNS = (
    "seq, queue, payload, headers, key, error_type, error_message, traceback, classification,"
    " history, first_failed_at, last_failed_at, due_at, max_attempts, attempts, status,"
    " updated_at, lease, note"
)
INSERT = f"INSERT OR IGNORE INTO buttress_dlq ({COLUMNS}) VALUES ({', '.join('?' * 19)})"
TAKE_IDS = "UPDATE buttress_dlq_meta SET value = value + ? WHERE name = 'next_id' RETURNING value"

OPEN = ("pending", "retrying", "parked")


def insert_rows(conn: Any, batches: Sequence[NewBatch]) -> list[list[str]]:
    """Insert every batch with one ``executemany``; the ids of each batch, in order."""
    total = sum(len(batch.payloads) for batch in batches)
    (end,) = conn.execute(TAKE_IDS, (total,)).fetchone()
    seq = end - total
    rows: list[tuple[Any, ...]] = []
    planned: list[list[int]] = []
    keyed = False
    for batch in batches:
        error = batch.error
        now = batch.now
        tail = (
            error.type,
            error.message,
            error.traceback,
            batch.classification.value,
            batch.history,
            now,
            now,
            batch.next_attempt_at,
            batch.max_attempts,
            0,
            batch.status.value,
            now,
            None,
            "",
        )
        queue, headers = batch.queue, batch.headers
        first = seq + 1
        if batch.keys is None:
            for payload in batch.payloads:
                seq += 1
                rows.append((seq, queue, payload, headers, None, *tail))
        else:
            keyed = True
            for payload, key in zip(batch.payloads, batch.keys, strict=True):
                seq += 1
                rows.append((seq, queue, payload, headers, key, *tail))
        planned.append(list(range(first, seq + 1)))
    before = conn.total_changes
    conn.executemany(INSERT, rows)
    if not keyed or conn.total_changes - before == len(rows):
        return [[str(s) for s in seqs] for seqs in planned]
    # Some keys were already stored (or repeated in this round): answer with the stored ids.
    ids: list[list[str]] = []
    for batch, seqs in zip(batches, planned, strict=True):
        keys = batch.keys or [None] * len(seqs)
        out = []
        for seq_, key in zip(seqs, keys, strict=True):
            if key is None:
                out.append(str(seq_))
                continue
            (stored,) = conn.execute(
                "SELECT seq FROM buttress_dlq WHERE key = ?", (key,)
            ).fetchone()
            out.append(str(stored))
        ids.append(out)
    return ids


def letter_of(row: Sequence[Any], *, lost: bool = False) -> Delivery:
    """A row (in ``COLUMNS`` order) as a record; a payload that does not decode is reported."""
    payload, problem = decode_payload(row[2])
    return Delivery(
        DeadLetter(
            id=str(row[0]),
            queue=row[1],
            payload=payload,
            headers=json.loads(row[3]) if row[3] else {},
            key=row[4],
            error=ErrorInfo(row[5], row[6], row[7]),
            classification=CLASSIFICATIONS[row[8]],
            history=decode_history(row[9]),
            first_failed_at=row[10],
            last_failed_at=row[11],
            next_attempt_at=row[12],
            max_attempts=row[13],
            attempts=row[14],
            status=STATUSES[row[15]],
            updated_at=row[16],
            note=row[18],
        ),
        lost,
        problem,
    )


def where(filter: Filter) -> tuple[str, list[Any]]:
    """The SQL condition (``1`` when empty) and its parameters for ``filter``."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("queue", filter.queue),
        ("status", filter.status),
        ("classification", filter.classification),
        ("error_type", filter.error_type),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(str(value))
    if filter.since is not None:
        clauses.append("first_failed_at >= ?")
        params.append(filter.since)
    if filter.until is not None:
        clauses.append("first_failed_at < ?")
        params.append(filter.until)
    if filter.ids is not None:
        seqs = [int(i) for i in filter.ids if i.isascii() and i.isdigit()]
        if not seqs:
            return "0", []
        clauses.append(f"seq IN ({', '.join('?' * len(seqs))})")
        params.extend(seqs)
    return (" AND ".join(clauses) or "1"), params
