"""Group commit: one writer thread owns the SQLite write connection and batches every write.

Callers hand the writer a job and wait. The writer takes every job queued at that moment, runs
them all in one ``BEGIN IMMEDIATE`` transaction (inserts together, in one ``executemany``; each
other job inside its own savepoint, so one failing job does not undo the others), commits (with
``synchronous=FULL`` the commit is on disk when it returns), and only then wakes the callers.
So an add is durable when it returns, and many concurrent adds share one fsync: while one
transaction commits, the next batch gathers. A sync caller waits on a lock the writer releases;
asyncio callers get their futures settled with one ``call_soon_threadsafe`` per loop per batch.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, Generic, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
B = TypeVar("B")

Connect = Callable[[], sqlite3.Connection]
InsertMany = Callable[[sqlite3.Connection, Sequence[Any]], list[Any]]


class _Job(Generic[T]):
    __slots__ = ("batch", "error", "fn", "future", "lock", "result")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], T] | None,
        batch: object,
        future: asyncio.Future[T] | None,
    ) -> None:
        self.fn = fn
        self.batch = batch
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None
        self.lock: Any = None
        if future is None:
            self.lock = threading.Lock()
            self.lock.acquire()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[no-any-return]


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        future = job.future
        if future is None or future.done():
            continue  # a cancelled caller: the write still happened
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)


class GroupCommitter:
    """The writer thread of one SQLite file. ``run(fn)`` runs ``fn(conn)`` in a transaction
    and returns its result; ``insert(batch)`` goes through ``insert_many``, shared with every
    insert of the same round. ``wrap`` turns an ``sqlite3.Error`` into the error to raise."""

    def __init__(
        self,
        connect: Connect,
        insert_many: InsertMany,
        wrap: Callable[[str, sqlite3.Error], Exception],
        *,
        name: str = "buttress-dlq-writer",
    ) -> None:
        self._connect = connect
        self._insert_many = insert_many
        self._wrap = wrap
        self._name = name
        self._queue: deque[_Job[Any]] = deque()
        self._wake = threading.Condition(threading.Lock())
        self._idle = True
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._pid = os.getpid()
        self.rounds = 0
        """Transactions committed (for tests and the bench: adds per fsync)."""

    # -- submitting ----------------------------------------------------------------------------

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's next transaction; its result or its error."""
        job: _Job[T] = _Job(fn, None, None)
        self._submit(job)
        job.lock.acquire()
        return job.outcome()

    async def arun(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``run`` for asyncio callers."""
        job: _Job[T] = _Job(fn, None, asyncio.get_running_loop().create_future())
        self._submit(job)
        assert job.future is not None
        return await job.future

    def insert(self, batch: object) -> Any:
        """Insert ``batch`` with the round's other inserts; ``insert_many``'s result for it."""
        job: _Job[Any] = _Job(None, batch, None)
        self._submit(job)
        job.lock.acquire()
        return job.outcome()

    async def ainsert(self, batch: object) -> Any:
        """``insert`` for asyncio callers."""
        job: _Job[Any] = _Job(None, batch, asyncio.get_running_loop().create_future())
        self._submit(job)
        assert job.future is not None
        return await job.future

    def _submit(self, job: _Job[Any]) -> None:
        if self._stopping:
            raise self._wrap("write", sqlite3.ProgrammingError("the dead letter queue is closed"))
        if self._pid != os.getpid():
            self._forked()
        if self._thread is None:
            self._start()
        self._queue.append(job)
        # The writer sets _idle before it looks at the queue for the last time, under _wake:
        # either it sees this job, or it is waiting and this notify reaches it.
        if self._idle:
            with self._wake:
                self._wake.notify()

    def _forked(self) -> None:
        # A forked child has the parent's objects but not its writer thread: start afresh
        # (the new thread opens its own connection; the parent's is never touched here).
        self._pid = os.getpid()
        self._queue = deque()
        self._wake = threading.Condition(threading.Lock())
        self._start_lock = threading.Lock()
        self._idle, self._thread = True, None

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def close(self) -> None:
        """Finish the queued jobs, stop the thread and close the connection; idempotent."""
        self._stopping = True
        thread = self._thread
        if thread is None:
            return
        with self._wake:
            self._wake.notify()
        if thread is not threading.current_thread():
            thread.join(timeout=30)
        left = list(self._queue)  # submitted while closing: fail them rather than hang
        self._queue.clear()
        self._fail(left, self._wrap("write", sqlite3.ProgrammingError("closed")))
        self._finish(left)

    # -- the writer thread ---------------------------------------------------------------------

    def _main(self) -> None:
        conn: sqlite3.Connection | None = None
        queue, wake = self._queue, self._wake
        try:
            while True:
                with wake:
                    self._idle = True
                    while not queue and not self._stopping:
                        wake.wait(1.0)
                    self._idle = False
                if not queue:
                    return  # stopping and nothing left
                jobs = []
                while queue:
                    jobs.append(queue.popleft())
                if conn is None:
                    try:
                        conn = self._connect()
                    except sqlite3.Error as exc:
                        self._fail(jobs, self._wrap("connect", exc))
                        self._finish(jobs)  # never leave a caller waiting
                        continue
                self._round(conn, jobs)
                self._finish(jobs)
        finally:
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()
            for job in queue:  # only after a crash of this loop: never leave a caller hanging
                job.error = self._wrap("write", sqlite3.OperationalError("writer stopped"))
            self._finish(list(queue))

    def _round(self, conn: sqlite3.Connection, jobs: list[_Job[Any]]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail(jobs, self._wrap("begin", exc))
            return
        try:
            inserts = [job for job in jobs if job.fn is None]
            if inserts:
                self._inserts(conn, inserts)
            for job in jobs:
                if job.fn is not None:
                    self._call(conn, job)
            conn.execute("COMMIT")
            self.rounds += 1
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = self._wrap("commit", exc) if isinstance(exc, sqlite3.Error) else exc
            self._fail(jobs, error)
            if not isinstance(exc, Exception):
                raise

    def _inserts(self, conn: sqlite3.Connection, jobs: list[_Job[Any]]) -> None:
        conn.execute("SAVEPOINT inserts")
        try:
            results = self._insert_many(conn, [job.batch for job in jobs])
        except Exception as exc:
            conn.execute("ROLLBACK TO inserts")
            conn.execute("RELEASE inserts")
            error = self._wrap("insert", exc) if isinstance(exc, sqlite3.Error) else exc
            for job in jobs:
                job.error = error
            return
        conn.execute("RELEASE inserts")
        for job, result in zip(jobs, results, strict=True):
            job.result = result

    def _call(self, conn: sqlite3.Connection, job: _Job[Any]) -> None:
        assert job.fn is not None
        conn.execute("SAVEPOINT job")
        try:
            job.result = job.fn(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            job.error = self._wrap("write", exc) if isinstance(exc, sqlite3.Error) else exc
            return
        conn.execute("RELEASE job")

    @staticmethod
    def _fail(jobs: list[_Job[Any]], error: BaseException) -> None:
        for job in jobs:
            job.result = None
            job.error = error

    @staticmethod
    def _finish(jobs: list[_Job[Any]]) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in jobs:
            if job.future is None:
                job.lock.release()
            else:
                loops.setdefault(job.future.get_loop(), []).append(job)
        for loop, waiting in loops.items():
            with suppress(RuntimeError):  # the loop was closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, waiting)
