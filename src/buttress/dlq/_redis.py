"""``redis://...``: dead letters shared by a fleet, on Redis Streams with a consumer group.

Each record is a hash (a batch's records share one until a script changes one of them: see
``_lua/_dlq.lua``); a pending record waits in its queue's schedule (a sorted set by due
time); when due, a worker's ``take`` script moves it into the queue's stream and reads it
through the consumer group ``workers``, so it sits in that worker's pending-entry list while
leased. Entries a worker held past the lease (it died) are reclaimed with ``XAUTOCLAIM``. The
outcome is stored by the ``finish`` script only while the record is still leased under the
batch's token. Counters kept by every script make ``stats()`` cheap. Every multi-key step is
one Lua script (``_lua/*.lua``) on keys sharing the hash tag ``{<name>}``.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import math
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from buttress.dlq._backend import Delivery, NewBatch, Outcome, decode_payload
from buttress.dlq._records import (
    Attempt,
    Classification,
    DeadLetter,
    ErrorInfo,
    Filter,
    Page,
    Stats,
    Status,
    decode_history,
    empty_statuses,
    encode_history,
    encode_json,
)
from buttress.stores._common import DEFAULT_PREFIX
from buttress.stores._scripts import Script

if TYPE_CHECKING:
    from redis.commands.core import Script as SyncScript

__all__ = ["RedisBackend"]

CHUNK = 500
"""Records per ``add`` script call; larger batches are several calls in one MULTI/EXEC."""
SCAN_RANGES = 20
"""Id ranges (one per added batch) read per step while listing."""
SCAN_LIMIT = 10_000
"""Ids one ``list`` call looks at before it returns a shorter page with a cursor."""
BUCKET = 10.0
"""Seconds per arrival-count bucket (kept a day)."""
SEP = "\x1f"


@cache
def _script(name: str) -> Script:
    folder = resources.files("buttress.dlq").joinpath("_lua")
    lib = folder.joinpath("_dlq.lua").read_text(encoding="utf-8")
    return Script.from_source(
        f"dlq.{name}", lib + folder.joinpath(f"{name}.lua").read_text("utf-8")
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _history(raw: dict[str, str], error: dict[str, str], first: float) -> tuple[Attempt, ...]:
    """The stored history; until an attempt failed, the record's own error is its history."""
    if "hi" in raw:
        return decode_history(raw["hi"])
    kind = Classification(raw["c"])
    return (Attempt(0, first, error["type"], error["message"], kind),)


def _matches(filter: Filter, row: Sequence[str | None]) -> bool:
    q, s, c, t, f = row
    return (
        s is not None
        and f is not None
        and (filter.queue is None or q == filter.queue)
        and (filter.status is None or s == filter.status)
        and (filter.classification is None or c == filter.classification)
        and (filter.error_type is None or t == filter.error_type)
        and (filter.since is None or float(f) >= filter.since)
        and (filter.until is None or float(f) < filter.until)
    )


def _letter(flat: Sequence[Any], lost: bool = False) -> Delivery:
    it = iter(flat)
    raw = {_text(k): _text(v) for k, v in zip(it, it, strict=True)}
    payload, problem = decode_payload(raw["p"])
    error = json.loads(raw["e"])
    first = float(raw["f"])
    letter = DeadLetter(
        id=raw["id"],
        queue=raw["q"],
        payload=payload,
        headers=json.loads(raw["h"]) if "h" in raw else {},
        key=raw.get("k"),
        error=ErrorInfo(error["type"], error["message"], error["traceback"]),
        classification=Classification(raw["c"]),
        history=_history(raw, error, first),
        first_failed_at=first,
        last_failed_at=float(raw.get("l", first)),
        next_attempt_at=float(raw["n"]) if "n" in raw else None,
        max_attempts=int(raw["m"]),
        attempts=int(raw.get("a", 0)),
        status=Status(raw["s"]),
        updated_at=float(raw.get("u", first)),
        note=raw.get("r", ""),
    )
    return Delivery(letter, lost, problem)


class RedisBackend:
    """Dead letters in Redis at ``url`` under ``<prefix>{<name>}:...``.

    ``RedisBackend(url="redis://127.0.0.1:6379/0", *, name="dlq", prefix="buttress:",
    timeout=5.0)``. Thread-safe; the client connects on first use.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        name: str = "dlq",
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 5.0,
    ) -> None:
        from buttress.stores._redis import RedisStore

        self._store = RedisStore(url, prefix=prefix, timeout=timeout)
        self.client = self._store.client
        self.base = self._store.layout.key(name)
        self._scripts: dict[str, SyncScript] = {}

    @property
    def url(self) -> str:
        """The Redis URL with its password masked."""
        return self._store.url

    def _key(self, *parts: str) -> str:
        return ":".join((self.base, *parts))

    def _registered(self, name: str) -> SyncScript:
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self.client.register_script(_script(name).source)
        return found

    def _run(self, name: str, args: Sequence[Any]) -> Any:
        with self._store.guard(f"dlq {name}"):
            return self._registered(name)(keys=[self.base], args=list(args))

    # -- adding --------------------------------------------------------------------------------

    def insert(self, batch: NewBatch) -> builtins.list[str]:
        """Store the batch: one script call, or several in one MULTI/EXEC when it is large."""
        keys, payloads = batch.keys, batch.payloads
        keyed = keys is not None and any(k is not None for k in keys)
        head = [
            batch.queue,
            encode_json(batch.error.to_dict()),
            "1" if keyed else "0",
            batch.classification.value,
            batch.error.type,
            repr(batch.now),
            "" if batch.next_attempt_at is None else repr(batch.next_attempt_at),
            batch.max_attempts,
            batch.status.value,
            batch.headers or "",
            math.floor(batch.now / BUCKET),
        ]
        calls: builtins.list[builtins.list[Any]] = []
        for start in range(0, len(payloads), CHUNK):
            chunk = payloads[start : start + CHUNK]
            args: builtins.list[Any] = [*head, len(chunk)]
            if keyed and keys is not None:
                for key, payload in zip(keys[start : start + CHUNK], chunk, strict=True):
                    args += (key or "", payload)
            else:
                args += chunk
            calls.append(args)
        script = self._registered("add")
        with self._store.guard("dlq add"):
            if len(calls) == 1:
                replies = [script(keys=[self.base], args=calls[0])]
            else:
                pipe = self.client.pipeline(transaction=True)
                for args in calls:
                    script(keys=[self.base], args=args, client=pipe)
                replies = pipe.execute()
        ids: builtins.list[str] = []
        for args, reply in zip(calls, replies, strict=True):
            if isinstance(reply, list):  # keyed: each payload's id
                ids += [_text(id) for id in reply]
            else:  # the last of the chunk's consecutive ids
                count = args[len(head)]
                ids += [str(id) for id in range(int(reply) - count + 1, int(reply) + 1)]
        return ids

    async def ainsert(self, batch: NewBatch) -> builtins.list[str]:
        """``insert`` in a thread."""
        return await asyncio.to_thread(self.insert, batch)

    # -- reading -------------------------------------------------------------------------------

    def _read(self, what: str, ids: Sequence[str]) -> builtins.list[Any]:
        """The ``read`` script's answer per id (a record may be in its batch's hash)."""
        out: builtins.list[Any] = []
        for start in range(0, len(ids), CHUNK):
            out += self._run("read", [what, *ids[start : start + CHUNK]])
        return out

    def _fetch(self, ids: Sequence[str]) -> builtins.list[DeadLetter]:
        return [
            _letter([b"id", id, *flat]).letter
            for id, flat in zip(ids, self._read("all", ids), strict=True)
            if flat
        ]

    def get(self, id: str) -> DeadLetter | None:
        """The record ``id``, or None."""
        found = self._fetch([id])
        return found[0] if found else None

    def _scan(
        self, filter: Filter, limit: int | None, cursor: str | None
    ) -> tuple[list[str], str | None]:
        """Ids matching ``filter``, newest first, after ``cursor``; a cursor if more may follow."""
        if filter.ids is not None:
            ids = sorted({i for i in filter.ids if i.isdigit()}, key=int, reverse=True)
            if cursor is not None:
                ids = [i for i in ids if int(i) < int(cursor)]
            letters = [letter for letter in self._fetch(ids) if filter.matches(letter)]
            chosen = [letter.id for letter in letters]
            if limit is not None and len(chosen) > limit:
                return chosen[:limit], chosen[limit - 1]
            return chosen, None
        found: builtins.list[str] = []
        below = None if cursor is None else int(cursor)  # ids < below are left to look at
        looked = 0
        while True:
            top = "+inf" if below is None else f"({below}"
            with self._store.guard("dlq list"):
                members = self.client.zrevrangebyscore(
                    self._key("all"), top, "-inf", start=0, num=SCAN_RANGES
                )
            if not members:
                return found, None
            for raw in members:
                member = _text(raw)
                first, _, last = member.partition("-")
                high = int(last) if below is None else min(int(last), below - 1)
                ids = [str(n) for n in range(high, int(first) - 1, -1)]
                rows = self._rows(ids)
                if high == int(last) and all(row[1] is None for row in rows):
                    self._drop_range(member)  # every record of the range is gone
                for id, row in zip(ids, rows, strict=True):
                    if _matches(filter, row):
                        found.append(id)
                        if limit is not None and len(found) > limit:
                            return found[:limit], found[limit - 1]
                looked += len(ids)
                below = int(first)
                if limit is not None and looked >= SCAN_LIMIT:
                    return found, str(below)

    def _rows(self, ids: Sequence[str]) -> builtins.list[builtins.list[str | None]]:
        """The listing fields (queue, status, class, type, first failure) of each id."""
        return [[None if v is None else _text(v) for v in row] for row in self._read("row", ids)]

    def _drop_range(self, member: str) -> None:
        with self._store.guard("dlq list"):
            self.client.zrem(self._key("all"), member)

    def list(self, filter: Filter, limit: int, cursor: str | None) -> Page:
        """Matching records, newest first (a page may be short when many do not match)."""
        ids, next_cursor = self._scan(filter, limit, cursor)
        return Page(tuple(self._fetch(ids)), next_cursor)

    def stats(self, now: float, window: float) -> Stats:
        """Counters kept by the scripts, the oldest waiting record, arrivals per bucket."""
        first = math.floor((now - window) / BUCKET) + 1
        last = math.floor(now / BUCKET)
        with self._store.guard("dlq stats"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self._key("counts"))
            buckets = [self._key("arr", str(b)) for b in range(first, last + 1)]
            if buckets:
                pipe.mget(buckets)
            replies = pipe.execute()
        counts = replies[0]
        arrived = sum(int(v) for v in replies[1] if v is not None) if buckets else 0
        oldest = self._run("oldest", [])
        by_status = empty_statuses()
        by_queue: dict[str, dict[str, int]] = {}
        kinds: dict[str, int] = {}
        types: dict[str, int] = {}
        for raw_field, raw_value in counts.items():
            value = int(raw_value)
            if value <= 0:
                continue
            kind, _, rest = _text(raw_field).partition(SEP)
            if kind == "s":
                by_status[rest] = value
            elif kind == "q":
                queue, _, status = rest.rpartition(SEP)
                by_queue.setdefault(queue, empty_statuses())[status] = value
            elif kind == "c":
                kinds[rest] = value
            elif kind == "t":
                types[rest] = value
        return Stats(
            time=now,
            total=sum(by_status.values()),
            by_status=by_status,
            by_queue=by_queue,
            by_classification=kinds,
            by_error_type=types,
            oldest_pending_at=float(oldest) if oldest else None,
            arrival_rate=arrived / window,
            rate_window=window,
        )

    # -- the worker's side ---------------------------------------------------------------------

    def lease(
        self, queues: Sequence[str], now: float, limit: int, lease_until: float, token: str
    ) -> builtins.list[Delivery]:
        """Take due records queue by queue until ``limit``; the consumer is the token's worker."""
        consumer = token.rpartition(":")[0] or token
        lease_ms = max(1, math.ceil((lease_until - now) * 1000))
        out: builtins.list[Delivery] = []
        for queue in queues:
            left = limit - len(out)
            if left <= 0:
                break
            args = (queue, repr(now), left, repr(lease_until), token, consumer, lease_ms)
            for lost, id, flat in self._run("take", args):
                out.append(_letter([b"id", id, *flat], lost in (b"1", "1")))
        return out

    def complete(self, outcomes: Sequence[Outcome], token: str, now: float) -> builtins.list[bool]:
        """Apply the outcomes still leased under ``token``."""
        args: builtins.list[Any] = [token, repr(now)]
        for o in outcomes:
            failed = o.status is not Status.RESOLVED
            args += (
                o.id,
                o.status.value,
                o.attempts,
                "" if o.next_attempt_at is None else repr(o.next_attempt_at),
                encode_json(o.error.to_dict()) if failed and o.error is not None else "",
                "" if o.history is None else encode_history(o.history),
                o.classification.value if failed and o.classification is not None else "",
                o.error.type if failed and o.error is not None else "",
            )
        return [int(x) == 1 for x in self._run("finish", args)]

    def complete_and_lease(
        self,
        outcomes: Sequence[Outcome],
        token: str,
        now: float,
        queues: Sequence[str],
        limit: int,
        lease_until: float,
        next_token: str,
    ) -> tuple[builtins.list[bool], builtins.list[Delivery]]:
        """``complete``, then ``lease`` (two round trips; nothing to share on Redis)."""
        applied = self.complete(outcomes, token, now)
        return applied, self.lease(queues, now, limit, lease_until, next_token)

    # -- manual intervention -------------------------------------------------------------------

    def _manage(self, action: str, filter: Filter, now: float, arg: str = "") -> int:
        ids, _ = self._scan(filter, None, None)
        done = 0
        for start in range(0, len(ids), CHUNK):
            done += int(self._run("manage", [action, repr(now), arg, *ids[start : start + CHUNK]]))
        return done

    def requeue(self, filter: Filter, now: float) -> int:
        """Pending and parked matches become due at ``now``."""
        return self._manage("requeue", filter, now)

    def edit(self, id: str, payload: str, now: float) -> bool:
        """Replace the payload of a pending or parked record."""
        return int(self._run("manage", ["edit", repr(now), payload, id])) == 1

    def discard(self, filter: Filter, reason: str, now: float) -> int:
        """Open matches become discarded."""
        return self._manage("discard", filter, now, reason)

    def delete(self, filter: Filter) -> int:
        """Delete the matches."""
        return self._manage("delete", filter, 0.0)

    def cleanup(self, before: float) -> int:
        """Delete resolved and discarded records last updated before ``before``."""
        done = 0
        while True:
            with self._store.guard("dlq cleanup"):
                ids = [
                    _text(i)
                    for i in self.client.zrangebyscore(
                        self._key("closed"), "-inf", f"({before!r}", start=0, num=CHUNK
                    )
                ]
            if not ids:
                return done
            done += int(self._run("manage", ["delete", "0", "", *ids]))

    def close(self) -> None:
        """Close the client; idempotent."""
        self._store.close()

    def __repr__(self) -> str:
        return f"RedisBackend({self.url!r}, base={self.base!r})"
