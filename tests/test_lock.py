"""single_instance: one copy at a time, released on crash, holder reported, waits bounded."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import AlreadyRunningError, ButtressError, ConfigError
from buttress.lock import InstanceLock, LockHolder, single_instance
from buttress.testing import ManualClock

CHILD = """
import sys, time
from buttress.lock import single_instance
lock = single_instance("job", directory=sys.argv[1], command="child job --token=hunter22")
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_context_manager_holds_then_releases(tmp_path: Path) -> None:
    """Inside `with` the lock is held and the file names this process; after, it is free."""
    lock = single_instance("job", directory=tmp_path, command="nightly")
    with lock:
        assert lock.held
        record = json.loads((tmp_path / "job.lock").read_text())
        assert record["pid"] == os.getpid()
        assert record["host"] == socket.gethostname()
        assert record["command"] == "nightly"
        assert lock.holder() == single_instance("job", directory=tmp_path).holder()
    assert not lock.held
    assert (tmp_path / "job.lock").read_text() == ""  # emptied, never deleted
    assert single_instance("job", directory=tmp_path).holder() is None


def test_second_copy_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """Another acquisition (even in this process) raises AlreadyRunningError with the holder."""
    with single_instance("job", directory=tmp_path, command="python nightly.py"):
        other = single_instance("job", directory=tmp_path)
        with pytest.raises(AlreadyRunningError) as info:
            other.acquire()
        error = info.value
        assert isinstance(error, ButtressError)
        assert error.name == "job"
        assert error.holder is not None
        assert error.holder.pid == os.getpid()
        assert error.path == str(tmp_path / "job.lock")
        assert f"pid {os.getpid()}" in str(error)
        assert "python nightly.py" in str(error)
        assert not other.try_acquire()
    assert other.try_acquire()
    other.release()


def test_lock_in_a_killed_process_is_released(tmp_path: Path) -> None:
    """A child holding the lock is named as holder; after SIGKILL the lock is free at once."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        lock = single_instance("job", directory=tmp_path)
        with pytest.raises(AlreadyRunningError) as info:
            lock.acquire()
        assert info.value.holder is not None
        assert info.value.holder.pid == child.pid
        assert "hunter22" not in str(info.value)  # secrets in the command line are masked
        assert lock.holder() == info.value.holder
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert lock.holder() is None  # the record left behind names a dead pid
        assert lock.try_acquire()
        lock.release()
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_wait_gives_up_after_the_timeout_in_virtual_time(tmp_path: Path) -> None:
    """acquire(wait=1) polls every `poll` seconds and raises once a second has passed."""
    clock = ManualClock()
    with single_instance("job", directory=tmp_path):
        lock = single_instance("job", directory=tmp_path, poll=0.3, clock=clock)
        with pytest.raises(AlreadyRunningError):
            lock.acquire(wait=1)
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert not lock.held


def test_wait_succeeds_when_the_holder_lets_go(tmp_path: Path) -> None:
    """A waiter gets the lock as soon as the holder releases it within the wait."""
    holder = single_instance("job", directory=tmp_path)
    holder.acquire()

    class ReleasingClock(ManualClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if len(self.sleeps) == 3:
                holder.release()

    clock = ReleasingClock()
    waiter = single_instance("job", directory=tmp_path, wait=10, poll=1, clock=clock)
    with waiter:
        assert waiter.held
    assert clock.sleeps == [1, 1, 1]


async def test_async_wait_uses_the_clock(tmp_path: Path) -> None:
    """`async with` waits with clock.asleep and gives up after `wait`."""
    clock = ManualClock()
    with single_instance("job", directory=tmp_path):
        lock = single_instance("job", directory=tmp_path, wait=0.5, poll=0.2, clock=clock)
        with pytest.raises(AlreadyRunningError):
            async with lock:
                pass
    assert sum(clock.sleeps) == pytest.approx(0.5)
    async with lock:
        assert lock.held


def test_decorator_refuses_overlapping_calls(tmp_path: Path) -> None:
    """A decorated job called while a call is running (another thread) is refused."""
    started, finish = threading.Event(), threading.Event()
    calls: list[str] = []

    @single_instance("job", directory=tmp_path)
    def job(label: str) -> str:
        """A job."""
        calls.append(label)
        started.set()
        finish.wait(5)
        return label

    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(job("first")))
    worker.start()
    assert started.wait(5)
    with pytest.raises(AlreadyRunningError):
        job("second")
    finish.set()
    worker.join()
    assert results == ["first"]
    assert calls == ["first"]
    assert job("third") == "third"
    assert job.__name__ == "job"
    assert job.__doc__ == "A job."


async def test_decorator_on_async_functions(tmp_path: Path) -> None:
    """An async job holds the lock while it runs; a nested call is refused."""
    lock = single_instance("job", directory=tmp_path)

    @lock
    async def job(depth: int) -> int:
        assert single_instance("job", directory=tmp_path).holder() is not None
        if depth:
            return await job(depth - 1)
        return 7

    assert await job(0) == 7
    with pytest.raises(AlreadyRunningError):
        await job(1)
    assert not lock.held


def test_acquiring_twice_through_one_object_is_refused(tmp_path: Path) -> None:
    """The same object cannot take the lock it already holds (not reentrant)."""
    lock = single_instance("job", directory=tmp_path)
    with lock:
        with pytest.raises(AlreadyRunningError):
            lock.acquire()
        assert lock.held
    lock.release()  # releasing a free lock does nothing


def test_stale_record_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    """A record left by a crashed holder whose pid is gone means nobody holds the lock."""
    stale = LockHolder("job", dead_pid(), socket.gethostname(), "crashed", 1.0)
    (tmp_path / "job.lock").write_text(json.dumps(stale.to_dict()))
    lock = single_instance("job", directory=tmp_path)
    assert lock.holder() is None
    with lock:
        assert lock.holder() is not None
        assert lock.holder().pid == os.getpid()  # type: ignore[union-attr]


def test_forked_child_does_not_release_the_parents_lock(tmp_path: Path) -> None:
    """release() in a forked child only closes its copy: the parent still holds the lock."""
    lock = single_instance("job", directory=tmp_path)
    with lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0 if not lock.held else 3
            lock.release()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert lock.held
        assert not single_instance("job", directory=tmp_path).try_acquire()


def test_lock_directory_and_file_are_private(tmp_path: Path) -> None:
    """The directory is created 0700 and the lock file 0600 (command lines can be sensitive)."""
    directory = tmp_path / "locks"
    with single_instance("job", directory=directory):
        assert directory.stat().st_mode & 0o777 == 0o700
        assert (directory / "job.lock").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../up", "x" * 101, 3])
def test_bad_names_are_refused(name: object, tmp_path: Path) -> None:
    """A name that is not a plain file name raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match="name"):
        single_instance(name, directory=tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("wait", -1), ("poll", 0), ("wait", "soon")])
def test_bad_durations_are_refused(field: str, value: object, tmp_path: Path) -> None:
    """Negative or non-numeric waits and a zero poll raise ConfigError."""
    with pytest.raises(ConfigError, match=field):
        single_instance("job", directory=tmp_path, **{field: value})  # type: ignore[arg-type]


def test_error_pickles_with_its_holder() -> None:
    """AlreadyRunningError survives pickling (multiprocessing) with its holder."""
    holder = LockHolder("job", 42, "web-1", "run.sh", 0.0)
    error = pickle.loads(pickle.dumps(AlreadyRunningError("job", holder, "/l/job.lock")))
    assert (error.name, error.holder, error.path) == ("job", holder, "/l/job.lock")
    assert "pid 42 on web-1 since 1970-01-01T00:00:00+00:00: run.sh" in str(error)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=30))
def test_at_most_one_object_holds_the_lock(steps: list[tuple[int, bool]]) -> None:
    """Whatever the order of acquisitions and releases, at most one lock object holds it."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        locks: list[InstanceLock] = [single_instance("job", directory=directory) for _ in range(3)]
        try:
            for index, take in steps:
                lock = locks[index]
                if take:
                    held_before = lock.held
                    free = not any(other.held for other in locks)
                    assert lock.try_acquire() == free
                    assert lock.held == (free or held_before)
                else:
                    lock.release()
                assert sum(lock.held for lock in locks) <= 1
        finally:
            for lock in locks:
                lock.release()
