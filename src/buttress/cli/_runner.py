"""``ScriptGuard``: run a command with a timeout that kills its process group, retries with
backoff, and a timestamped log of every attempt. The engine of ``buttress run`` (no typer here).

Each attempt starts the command in a new session (its own process group), with stdin from
``/dev/null`` (an attempt can be repeated; input cannot), and tees its stdout and stderr: the
bytes go on to this process's stdout and stderr as they arrive, and each line goes to the log
with a UTC timestamp, the attempt number and the stream. At the timeout the whole group gets
SIGTERM, then SIGKILL after ``grace`` seconds. When the command exits, whatever it left running
in its group is stopped the same way, so that nothing of a run outlives its lock (as systemd
does for a service's control group). ``interrupt(signum)`` forwards a signal to the group and
stops retrying.

Exit statuses follow the shell: the command's own, 128+N when signal N killed it, 124 when the
last attempt timed out, 126 when the command cannot be executed, 127 when it does not exist.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO, cast

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.cli._runlog import RunLog, Sink, Tee, prune_logs, redact_command, safe_name
from buttress.retry import Backoff

__all__ = [
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "EXIT_TIMEOUT",
    "Attempt",
    "RunOutcome",
    "ScriptGuard",
]

EXIT_TIMEOUT = 124
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
_NOT_RETRIED = frozenset({EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND})
_STEP = 0.05  # longest wait between looks at the clock while an attempt runs
_DRAIN = 1.0  # how long output is still read once the group is gone


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt: its ``number`` (from 1), ``started`` (epoch s), ``duration``, exit
    ``status`` and whether it ``timed_out``."""

    number: int
    started: float
    duration: float
    status: int
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A guarded run: ``outcome`` is ok, failed, timeout, interrupted, locked or unhealthy;
    ``status`` is the exit status; ``log`` the log file ("" when none was written)."""

    name: str
    command: tuple[str, ...]
    started: float
    duration: float
    attempts: tuple[Attempt, ...]
    status: int
    outcome: str
    log: str = ""
    reason: str = ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


class ScriptGuard:
    """Runs ``command`` up to ``retries + 1`` times; see the module docstring.

    ``timeout`` is per attempt (None: none); ``backoff`` (default exponential from 1 s, capped
    at 60 s) spaces the attempts; ``retry_on`` limits the exit statuses retried (default: any
    failure except 126 and 127, which a new attempt cannot fix); the log goes to
    ``<log_dir>/<name>/`` where the newest ``keep_logs`` (100) are kept; ``stdout`` and
    ``stderr`` receive the command's output (default this process's).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        timeout: float | None = None,
        retries: int = 0,
        backoff: Backoff | None = None,
        grace: float = 10.0,
        retry_on: frozenset[int] | None = None,
        keep_logs: int = 100,
        stdout: IO[bytes] | TextIO | None = None,
        stderr: IO[bytes] | TextIO | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.command = tuple(command)
        self.name = name
        self.log_dir = Path(log_dir)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff if backoff is not None else Backoff.exponential(1.0, cap=60.0)
        self.grace = grace
        self.retry_on = retry_on
        self.keep_logs = keep_logs
        self._stdout, self._stderr = stdout, stderr
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = rng
        self._stop = threading.Event()
        self._signal: int | None = None
        self._pgid: int | None = None
        self._kill_at: float | None = None

    # -- signals -----------------------------------------------------------------------------

    def interrupt(self, signum: int) -> None:
        """Forward ``signum`` to the running command's group and run no further attempt (safe
        to call from a signal handler)."""
        self._signal = signum
        pgid = self._pgid
        if pgid is not None:
            _signal_group(pgid, signum)
            if self._kill_at is None:
                self._kill_at = self._clock.monotonic() + self.grace
        # The wait between attempts ends when the event is set. A signal handler must not set
        # it itself: the handler may run while this thread holds the event's lock (in wait()).
        threading.Thread(target=self._stop.set, name="buttress-run-interrupt", daemon=True).start()

    # -- running -----------------------------------------------------------------------------

    def _retryable(self, attempt: Attempt) -> bool:
        if attempt.status == 0 or self._signal is not None:
            return False
        if self.retry_on is not None:
            return attempt.status in self.retry_on or (
                attempt.timed_out and EXIT_TIMEOUT in self.retry_on
            )
        return attempt.status not in _NOT_RETRIED

    def run(self) -> RunOutcome:
        """Run the attempts and return the outcome (never raises for the command's failures)."""
        started, begin = self._clock.time(), self._clock.monotonic()
        stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
        log = RunLog(
            self.log_dir / safe_name(self.name) / f"{stamp}Z-{os.getpid()}.log", self._clock
        )
        out = Sink(self._stdout if self._stdout is not None else sys.stdout)
        err = Sink(self._stderr if self._stderr is not None else sys.stderr)
        total = self.retries + 1
        limit = f", timeout {self.timeout:g}s" if self.timeout else ""
        log.line(
            0,
            "run",
            f"{self.name}: {redact_command(self.command)} "
            f"(attempts {total}{limit}, backoff {self.backoff!r})",
        )
        attempts: list[Attempt] = []
        delays = self.backoff.delays(self._rng)
        try:
            for number in range(1, total + 1):
                if self._signal is not None:
                    break
                attempt = self._attempt(number, total, log, out, err)
                attempts.append(attempt)
                if number == total or not self._retryable(attempt):
                    break
                delay = next(delays)
                log.line(number, "run", f"retrying in {delay:.3f}s")
                if self._clock.wait(self._stop, delay) or self._signal is not None:
                    break
        finally:
            duration = self._clock.monotonic() - begin
            last = attempts[-1] if attempts else None
            status = last.status if last is not None else 128 + (self._signal or 0)
            if self._signal is not None:
                outcome = "interrupted"
            elif last is not None and last.timed_out:
                outcome = "timeout"
            else:
                outcome = "ok" if status == 0 else "failed"
            log.line(
                0,
                "run",
                f"{outcome}: status {status} after {len(attempts)} attempt(s) in {duration:.3f}s",
            )
            log.close()
            prune_logs(log.path.parent, self.keep_logs)
        return RunOutcome(
            self.name,
            self.command,
            started,
            duration,
            tuple(attempts),
            status,
            outcome,
            str(log.path),
        )

    def _step(self, now: float, deadline: float | None) -> float:
        wait = _STEP
        for when in (deadline, self._kill_at):
            if when is not None:
                wait = min(wait, when - now)
        return max(wait, 0.0)

    def _attempt(self, number: int, total: int, log: RunLog, out: Sink, err: Sink) -> Attempt:
        started, begin = self._clock.time(), self._clock.monotonic()
        self._kill_at = None
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            status = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
            text = f"cannot run {self.command[0]!r}: {exc.strerror or exc}"
            log.line(number, "run", f"{text} (status {status})")
            err.write(f"buttress run: {text}\n".encode())
            return Attempt(number, started, self._clock.monotonic() - begin, status)
        pgid = self._pgid = proc.pid
        if self._signal is not None:  # interrupted while starting it
            self.interrupt(self._signal)
        log.line(number, "run", f"attempt {number} of {total}: pid {proc.pid}")
        stdout, stderr = cast(IO[bytes], proc.stdout), cast(IO[bytes], proc.stderr)
        tees = {
            stdout.fileno(): Tee("out", out, log, number),
            stderr.fileno(): Tee("err", err, log, number),
        }
        selector = selectors.DefaultSelector()
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(stderr, selectors.EVENT_READ)
        deadline = None if self.timeout is None else begin + self.timeout
        timed_out = killed = False
        exited_at: float | None = None
        gone_at: float | None = None
        try:
            while True:
                now = self._clock.monotonic()
                running = proc.poll() is None
                if running and deadline is not None and not timed_out and now >= deadline:
                    timed_out = True
                    log.line(
                        number,
                        "run",
                        f"timed out after {self.timeout:g}s: SIGTERM to process group {pgid}",
                    )
                    _signal_group(pgid, signal.SIGTERM)
                    self._kill_at = now + self.grace
                if not running and exited_at is None:
                    exited_at = now
                    if self._kill_at is None and _group_alive(pgid):
                        log.line(
                            number,
                            "run",
                            f"the command exited: SIGTERM to what it left in process group {pgid}",
                        )
                        _signal_group(pgid, signal.SIGTERM)
                        self._kill_at = now + self.grace
                if (
                    not killed
                    and self._kill_at is not None
                    and now >= self._kill_at
                    and _group_alive(pgid)
                ):
                    killed = True
                    log.line(number, "run", f"grace period over: SIGKILL to process group {pgid}")
                    _signal_group(pgid, signal.SIGKILL)
                if not selector.get_map():
                    if not running:
                        break
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(self._step(now, deadline))
                    continue
                if exited_at is not None and gone_at is None and not _group_alive(pgid):
                    gone_at = now
                if gone_at is not None and now - gone_at > _DRAIN:
                    break  # the pipes are held by a process that left the group
                for key, _ in selector.select(self._step(now, deadline)):
                    data = os.read(key.fd, 65536)
                    if data:
                        tees[key.fd].feed(data)
                    else:
                        selector.unregister(key.fileobj)
        finally:
            selector.close()
            for tee in tees.values():
                tee.finish()
            if proc.poll() is None:  # we are leaving early (an exception): leave nothing behind
                _signal_group(pgid, signal.SIGKILL)
                proc.wait()
            stdout.close()
            stderr.close()
            self._pgid = None
        code = proc.returncode
        status = EXIT_TIMEOUT if timed_out else (128 - code if code < 0 else code)
        duration = self._clock.monotonic() - begin
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        log.line(
            number,
            "run",
            f"attempt {number} {how} after {duration:.3f}s"
            + (" (timed out: status 124)" if timed_out else ""),
        )
        return Attempt(number, started, duration, status, timed_out)
