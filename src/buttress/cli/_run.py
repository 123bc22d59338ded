"""``buttress run``: the script guard. See ``docs/script-guard.md``.

``buttress run --lock NAME --timeout 600 --retries 3 --backoff exponential --health-check
readiness -- COMMAND ...`` refuses to start while another copy holds the lock (exit 75) or while
the health checks fail (exit 69), runs the command with ``ScriptGuard`` (timeout killing its
process group, retries with backoff, a timestamped log under ``<state_dir>/runs``), records the
outcome in the state store, optionally puts a failed run in the dead letter queue, and exits
with the command's status.
"""

from __future__ import annotations

import contextlib
import enum
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from buttress._clock import SYSTEM_CLOCK
from buttress._redact import redact
from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit
from buttress.cli._runlog import redact_command
from buttress.cli._runner import RunOutcome, ScriptGuard
from buttress.errors import AlreadyRunningError, ButtressError, ConfigError, TimeoutError
from buttress.retry import Backoff

if TYPE_CHECKING:
    from buttress.config import Config

__all__ = ["EXIT_LOCKED", "EXIT_UNHEALTHY", "RUN_SETTINGS", "run_command"]

EXIT_LOCKED = 75  # EX_TEMPFAIL: another copy is running, try again later
EXIT_UNHEALTHY = 69  # EX_UNAVAILABLE: a health check the run depends on fails
DLQ_QUEUE = "runs"

RUN_SETTINGS: dict[str, Any] = {
    # Everything after the command's first word belongs to the command, not to us.
    "context_settings": {"allow_interspersed_args": False},
}


class BackoffKind(enum.StrEnum):
    """How the waits between attempts grow."""

    constant = "constant"
    linear = "linear"
    exponential = "exponential"
    fibonacci = "fibonacci"
    decorrelated = "decorrelated"


class JitterKind(enum.StrEnum):
    """Randomness added to the waits."""

    none = "none"
    full = "full"
    equal = "equal"


class HealthGroup(enum.StrEnum):
    """The checks that must not fail before the run starts."""

    liveness = "liveness"
    readiness = "readiness"
    startup = "startup"
    all = "all"


def _backoff(kind: BackoffKind, delay: float, cap: float, jitter: JitterKind) -> Backoff:
    if kind is BackoffKind.decorrelated:
        return Backoff.decorrelated(delay, cap=cap)
    if kind is BackoffKind.constant:
        return Backoff.constant(delay, cap=max(delay, cap), jitter=jitter.value)
    if kind is BackoffKind.linear:
        return Backoff.linear(delay, delay, cap=cap, jitter=jitter.value)
    if kind is BackoffKind.fibonacci:
        return Backoff.fibonacci(delay, cap=cap, jitter=jitter.value)
    return Backoff.exponential(delay, cap=cap, jitter=jitter.value)


@contextlib.contextmanager
def _forwarding(guard: ScriptGuard) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP go on to the command's process group while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[number] = signal.signal(number, lambda signum, _frame: guard.interrupt(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _say(text: str) -> None:
    typer.echo(f"buttress run: {text}", err=True)


def run_command(
    command: Annotated[
        list[str],
        typer.Argument(metavar="-- COMMAND [ARG]...", help="the command to run, after --"),
    ],
    lock: Annotated[
        str | None,
        typer.Option(help="refuse to start while another run holds this lock (exit 75)"),
    ] = None,
    wait_lock: Annotated[
        float, typer.Option(min=0, help="seconds to wait for the lock before refusing")
    ] = 0.0,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="seconds per attempt; then its process group is killed"),
    ] = None,
    grace: Annotated[
        float, typer.Option(min=0, help="seconds between SIGTERM and SIGKILL at the timeout")
    ] = 10.0,
    retries: Annotated[
        int, typer.Option(min=0, max=100, help="attempts after the first when it fails")
    ] = 0,
    backoff: Annotated[
        BackoffKind, typer.Option(help="how the waits between attempts grow")
    ] = BackoffKind.exponential,
    delay: Annotated[float, typer.Option(min=0, help="first wait between attempts (s)")] = 1.0,
    max_delay: Annotated[float, typer.Option(min=0, help="longest wait between attempts")] = 60.0,
    jitter: Annotated[JitterKind, typer.Option(help="randomness in the waits")] = JitterKind.none,
    retry_on: Annotated[
        list[int] | None,
        typer.Option(help="retry only these exit statuses (repeat; 124: a timeout)"),
    ] = None,
    health_check: Annotated[
        HealthGroup | None,
        typer.Option(help="refuse to start while these configured checks fail (exit 69)"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="the run's name (default: the lock, else the command)")
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="where logs go (default: <state_dir>/runs)", file_okay=False)
    ] = None,
    keep_logs: Annotated[int, typer.Option(min=1, help="logs kept per name")] = 100,
    dead_letter: Annotated[
        bool, typer.Option("--dead-letter", help="put a failed run in the dead letter queue")
    ] = False,
    dlq: Annotated[
        str | None, typer.Option(help="dead letter queue URL (default: <state_dir>/dlq.db)")
    ] = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Run a command guarded: one copy at a time, health-checked, retried, timed out, logged.

    Exits with the command's status (124 when the last attempt timed out, 128+N when signal N
    killed it, 126/127 when it cannot be run), 75 when another run holds the lock, 69 when a
    health check fails, 2 on a usage or configuration error.
    """
    if not command:
        _say("no command given (put it after --)")
        raise typer.Exit(2)
    loaded = load_or_exit(config, profile)
    state_dir = loaded.server.state_dir
    label = name or lock or Path(command[0]).name
    try:
        schedule = _backoff(backoff, delay, max_delay, jitter)
    except ConfigError as exc:
        _say(f"--backoff {backoff.value} --delay {delay:g} --max-delay {max_delay:g}: {exc}")
        raise typer.Exit(2) from None
    try:
        guard = ScriptGuard(
            command,
            name=label,
            log_dir=log_dir if log_dir is not None else state_dir / "runs",
            timeout=timeout,
            retries=retries,
            backoff=schedule,
            grace=grace,
            retry_on=None if not retry_on else frozenset(retry_on),
            keep_logs=keep_logs,
        )
        guard_lock = None
        if lock is not None:
            from buttress.lock import single_instance

            guard_lock = single_instance(
                lock, directory=state_dir / "locks", wait=wait_lock, command=redact_command(command)
            )
    except ConfigError as exc:
        _say(str(exc))
        raise typer.Exit(2) from None
    started = SYSTEM_CLOCK.time()
    try:
        if guard_lock is not None:
            guard_lock.acquire()
    except AlreadyRunningError as exc:
        _say(f"{exc} (lock {exc.path})")
        _finish(
            loaded, guard, _refused(guard, started, EXIT_LOCKED, "locked", str(exc)), False, dlq
        )
    try:
        if health_check is not None:
            group = None if health_check is HealthGroup.all else health_check.value
            report = loaded.health.run_sync(group, fresh=True)
            if not report.ok:
                failing = ", ".join(
                    f"{check} ({outcome.result.output or outcome.status.ietf})"
                    for check, outcome in report.checks.items()
                    if outcome.status.severity == 2
                )
                reason = f"health check {health_check.value} fails: {failing}"
                _say(f"{redact(reason)}; not starting")
                refused = _refused(guard, started, EXIT_UNHEALTHY, "unhealthy", reason)
                _finish(loaded, guard, refused, False, dlq)
        with _forwarding(guard):
            outcome = guard.run()
    except OSError as exc:  # the log directory cannot be written, for example
        _say(f"cannot run {label}: {exc}")
        raise typer.Exit(1) from None
    finally:
        if guard_lock is not None:
            guard_lock.release()
    if outcome.status != 0:
        _say(
            f"{outcome.name} {outcome.outcome} after {len(outcome.attempts)} attempt(s), "
            f"status {outcome.status}; log {outcome.log}"
        )
    _finish(loaded, guard, outcome, dead_letter and outcome.status != 0, dlq)


def _refused(guard: ScriptGuard, started: float, status: int, kind: str, reason: str) -> RunOutcome:
    return RunOutcome(guard.name, guard.command, started, 0.0, (), status, kind, "", reason)


def _finish(
    loaded: Config, guard: ScriptGuard, outcome: RunOutcome, to_dlq: bool, dlq: str | None
) -> NoReturn:
    """Record ``outcome``, dead-letter it if asked, and exit with its status."""
    from buttress.cli._runstore import RunHistory, dead_letter_record
    from buttress.ops._state import StateStore

    state_dir = loaded.server.state_dir
    store = StateStore.in_directory(state_dir)
    history: RunHistory | None = None
    run_id = 0
    try:
        history = RunHistory(store)
        run_id = history.record(outcome)
    except ButtressError as exc:
        _say(f"cannot record the run: {exc}")
    if to_dlq:
        record = dead_letter_record(outcome)
        url = dlq if dlq is not None else f"sqlite:///{state_dir / 'dlq.db'}"
        try:
            where = _add_dead_letter(url, record, outcome, guard.timeout)
            _say(f"failed run added to the dead letter queue: {where}")
        except Exception as exc:  # any failure of the queue: keep the record in the outbox
            text = redact(f"{type(exc).__name__}: {exc}")
            if history is not None:
                history.to_outbox(run_id, record, SYSTEM_CLOCK.time(), text)
                _say(f"dead letter queue unavailable ({text}); run kept in the outbox")
            else:
                _say(f"dead letter queue unavailable ({text}); run not kept")
    store.close()
    raise typer.Exit(outcome.status)


def _add_dead_letter(
    url: str, record: dict[str, Any], outcome: RunOutcome, timeout: float | None
) -> str:
    from buttress.dlq import DeadLetterQueue

    error: BaseException
    if outcome.outcome == "timeout":
        error = TimeoutError(outcome.name, timeout or outcome.duration)
    else:
        error = subprocess.CalledProcessError(outcome.status, record["command"])
    key = f"{record['host']}:{outcome.name}:{outcome.started:.6f}"
    with DeadLetterQueue(url) as queue:
        letter = queue.add(record, error=error, queue=DLQ_QUEUE, key=key)
    return f"{letter} in queue {DLQ_QUEUE!r} of {redact(url)}"
