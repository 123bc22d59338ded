"""The I/O half of distributed rate limits: round trips of ``EVALSHA`` calls on raw redis-py
connections, sync and asyncio.

A decision is one script call. The limiter keeps its own connections (made from the store's
URL and timeout, not taken from the store's pool) and writes packed commands straight onto
them, which halves the client's cost of a round trip compared with ``execute_command``:

- ``SyncChannel``: a stack of idle connections shared by the threads (``list.pop`` and
  ``append`` are atomic), so a thread takes one for its round trip and puts it back; no lock.
- ``AsyncChannel``: one connection per event loop and a queue. A decision submitted while
  nothing is in flight starts a round trip on the next turn of the loop; decisions submitted
  while one is in flight wait and go together in the next one: one pipeline, and one script
  call for all the ``take`` decisions of the same key (the script decides them in order, at
  one server time, exactly as if they had come one after another).

``NOSCRIPT`` (a restarted or flushed server) loads the script and sends the call again. A
broken connection is replaced and the round trip tried once more; any other failure raises
``StoreError`` with the URL masked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from buttress.errors import StoreError
from buttress.stores import Script
from buttress.stores._common import store_error

if TYPE_CHECKING:
    import redis.asyncio.connection

__all__ = ["AsyncChannel", "Command", "Job", "SyncChannel"]

Command = tuple[Script, tuple[Any, ...]]
"""A script and its whole ``EVALSHA`` command (``("EVALSHA", sha, nkeys, *keys, *args)``)."""


def evalsha(script: Script, keys: Sequence[str], args: Sequence[str]) -> tuple[Any, ...]:
    """The words of ``EVALSHA`` for ``script`` on ``keys`` with ``args``."""
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def _hiredis_packer() -> Callable[[tuple[Any, ...]], bytes] | None:
    """hiredis's ``pack_command`` (C: about 0.7 us for a decision's command, where redis-py's
    connections, sync and asyncio, pack in Python in 4 us), or None without hiredis."""
    try:
        import hiredis
    except ImportError:  # pragma: no cover - buttress[redis] installs hiredis
        return None
    pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command
    return pack


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, Exception) and str(reply).startswith("No matching script")


def _loads(commands: Sequence[Command], missing: list[int]) -> list[tuple[Any, ...]]:
    scripts = {commands[i][0].sha: commands[i][0] for i in missing}
    return [("SCRIPT", "LOAD", s.source) for s in scripts.values()]


class SyncChannel:
    """Round trips from any thread, on a stack of idle connections (see the module doc)."""

    def __init__(self, url: str, timeout: float) -> None:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        pool = client.connection_pool
        self._make: Callable[[], Any] = lambda: pool.connection_class(**pool.connection_kwargs)
        self._url = url  # store_error() masks it
        self._idle: list[Any] = []
        self._made: list[Any] = []
        self._broken: tuple[type[Exception], ...] = (redis.ConnectionError,)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._response_error: type[Exception] = redis.ResponseError
        self._pack = _hiredis_packer()
        self.closed = False
        self.round_trips = 0

    def _take(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            conn = self._make()
            self._made.append(conn)
            return conn

    def run(self, commands: Sequence[Command], operation: str) -> list[Any]:
        """Send ``commands`` in one round trip; their replies (exceptions for error replies)."""
        for attempt in (1, 2):
            if self.closed:
                raise store_error(operation, self._url, "the rate limiter is closed")
            conn = self._take()
            try:
                replies = self._exchange(conn, [words for _, words in commands])
                missing = [i for i, r in enumerate(replies) if _is_noscript(r)]
                if missing:
                    self._exchange(conn, _loads(commands, missing))
                    again = self._exchange(conn, [commands[i][1] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
            except self._broken as exc:
                conn.disconnect()
                if attempt == 2:
                    raise store_error(operation, self._url, exc) from exc
                continue
            except self._errors as exc:
                conn.disconnect()
                raise store_error(operation, self._url, exc) from exc
            except BaseException:
                conn.disconnect()  # a reply may be unread: the connection is unusable
                raise
            self._idle.append(conn)
            return replies
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, conn: Any, words: list[tuple[Any, ...]]) -> list[Any]:
        self.round_trips += 1
        pack = self._pack
        if pack is not None:
            # A list: redis-py sends each item (bare bytes would be iterated as ints).
            conn.send_packed_command([b"".join([pack(w) for w in words])], check_health=False)
        elif len(words) == 1:
            conn.send_packed_command(conn.pack_command(*words[0]), check_health=False)
        else:
            conn.send_packed_command(conn.pack_commands(words), check_health=False)
        replies: list[Any] = []
        for _ in words:
            try:
                replies.append(conn.read_response())
            except self._response_error as exc:  # an error reply: the connection is fine
                replies.append(exc)
        return replies

    def delete(self, keys: tuple[str, ...], operation: str) -> None:
        """Delete ``keys``."""
        self._plain([("DEL", *keys)], operation)

    def delete_matching(self, pattern: str, operation: str) -> None:
        """Delete every key matching ``pattern`` (``SCAN``, so not atomically)."""
        cursor: Any = 0
        while True:
            cursor, found = self._plain(
                [("SCAN", cursor, "MATCH", pattern, "COUNT", 500)], operation
            )[0]
            if found:
                self._plain([("DEL", *found)], operation)
            if int(cursor) == 0:
                return

    def _plain(self, words: list[tuple[Any, ...]], operation: str) -> list[Any]:
        if self.closed:
            raise store_error(operation, self._url, "the rate limiter is closed")
        conn = self._take()
        try:
            replies = self._exchange(conn, words)
        except self._errors as exc:
            conn.disconnect()
            raise store_error(operation, self._url, exc) from exc
        except BaseException:
            conn.disconnect()
            raise
        self._idle.append(conn)
        for reply in replies:
            if isinstance(reply, Exception):
                raise store_error(operation, self._url, reply)
        return replies

    def close(self) -> None:
        """Close every connection; later round trips raise ``StoreError``."""
        self.closed = True
        made, self._made, self._idle = self._made, [], []
        for conn in made:
            conn.disconnect()


class Job:
    """One decision waiting for the next round trip: its script, keys, the arguments shared by
    the calls it may join (``head``), its own (``tail``), how many reply items are its own
    (``width``; 0: the whole reply, never merged) and the future of its reply."""

    __slots__ = ("future", "head", "keys", "script", "tail", "width")

    def __init__(
        self,
        script: Script,
        keys: tuple[str, ...],
        head: tuple[str, ...],
        tail: tuple[str, ...],
        width: int,
        future: asyncio.Future[Any],
    ) -> None:
        self.script = script
        self.keys = keys
        self.head = head
        self.tail = tail
        self.width = width
        self.future = future


class AsyncChannel:
    """One event loop's connection and queue of decisions (see the module docstring)."""

    def __init__(self, url: str, timeout: float) -> None:
        import redis
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        pool = client.connection_pool
        self._make: Callable[[], redis.asyncio.connection.AbstractConnection] = lambda: (
            pool.connection_class(**pool.connection_kwargs)
        )
        self._url = url  # store_error() masks it
        self._conn: redis.asyncio.connection.AbstractConnection | None = None
        self._pack = _hiredis_packer()
        self._queue: list[Job] = []
        self._task: asyncio.Task[None] | None = None
        self._broken: tuple[type[Exception], ...] = (redis.ConnectionError,)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._response_error: type[Exception] = redis.ResponseError
        self.closed = False
        self.round_trips = 0

    def submit(self, job: Job) -> None:
        """Queue ``job`` for the next round trip (starting one if none is in flight)."""
        if self.closed:
            job.future.set_exception(
                store_error("rate limit", self._url, "the rate limiter is closed")
            )
            return
        self._queue.append(job)
        if self._task is None:
            self._task = job.future.get_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                jobs, self._queue = self._queue, []
                groups: list[list[Job]] = []
                merged: dict[tuple[Any, ...], list[Job]] = {}
                for job in jobs:
                    if job.future.done():  # cancelled before it was sent: takes nothing
                        continue
                    if job.width:
                        handle = (job.script.sha, job.keys, job.head)
                        group = merged.get(handle)
                        if group is None:
                            group = merged[handle] = []
                            groups.append(group)
                        group.append(job)
                    else:
                        groups.append([job])
                if groups:
                    await self._send(groups)
        finally:
            self._task = None

    async def _send(self, groups: list[list[Job]]) -> None:
        commands: list[Command] = []
        for group in groups:
            first = group[0]
            args = [*first.head]
            for job in group:
                args.extend(job.tail)
            commands.append((first.script, evalsha(first.script, first.keys, args)))
        try:
            replies = await self._round_trip(commands)
        except StoreError as exc:
            for group in groups:
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): nobody gets an answer
            for group in groups:
                for job in group:
                    job.future.cancel()
            raise
        for group, reply in zip(groups, replies, strict=True):
            if isinstance(reply, Exception):
                error = store_error("rate limit", self._url, reply)
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            at = 0
            for job in group:
                width = job.width
                if not job.future.done():
                    job.future.set_result(reply[at : at + width] if width else reply)
                at += width

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        for attempt in (1, 2):
            conn = self._conn
            if conn is None:
                conn = self._conn = self._make()
            try:
                replies = await self._exchange(conn, [words for _, words in commands])
                missing = [i for i, r in enumerate(replies) if _is_noscript(r)]
                if missing:
                    await self._exchange(conn, _loads(commands, missing))
                    again = await self._exchange(conn, [commands[i][1] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
                return replies
            except self._broken as exc:
                await self._drop(conn)
                if attempt == 2:
                    raise store_error("rate limit", self._url, exc) from exc
            except self._errors as exc:
                await self._drop(conn)
                raise store_error("rate limit", self._url, exc) from exc
            except BaseException:
                await self._drop(conn)  # a reply may be unread: the connection is unusable
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self, conn: redis.asyncio.connection.AbstractConnection, words: list[tuple[Any, ...]]
    ) -> list[Any]:
        self.round_trips += 1
        pack = self._pack
        if pack is not None:
            packed: Any = b"".join([pack(w) for w in words])
        elif len(words) == 1:
            packed = conn.pack_command(*words[0])
        else:
            packed = conn.pack_commands(words)
        await conn.send_packed_command(packed, check_health=False)
        replies: list[Any] = []
        for _ in words:
            try:
                replies.append(await conn.read_response())
            except self._response_error as exc:
                replies.append(exc)
        return replies

    async def _drop(self, conn: redis.asyncio.connection.AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
        await conn.disconnect(nowait=True)

    async def aclose(self) -> None:
        """Close the connection (waiting for a round trip in flight); later calls fail."""
        self.closed = True
        task = self._task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):  # its decisions got the error
                await asyncio.shield(task)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()
