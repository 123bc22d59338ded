"""`buttress run`: lock, health gate, retries with backoff, timeouts that kill the process group,
the timestamped log, the recorded outcome and the dead letter queue, with real processes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from buttress.cli import main
from buttress.cli._runner import ScriptGuard
from buttress.cli._runstore import RunHistory
from buttress.lock import single_instance
from buttress.ops._state import StateStore
from buttress.retry import Backoff
from buttress.testing import ManualClock

FLAKY = """#!/bin/sh
n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
echo "attempt $n"
echo "oops $n" >&2
[ $n -ge 3 ] && exit 0 || exit 3
"""

HANG = """#!/bin/sh
trap '' TERM
sleep 30 &
echo $! > child.pid
echo $$ > main.pid
echo "hanging"
while :; do sleep 1; done
"""

LEAVES_CHILD = """#!/bin/sh
sleep 30 &
echo $! > child.pid
echo done
"""


def script(tmp_path: Path, name: str, text: str) -> str:
    """Write an executable shell script; returns its path."""
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def runs(name: str | None = None) -> list[dict[str, Any]]:
    """The recorded runs in ./.buttress, newest first."""
    store = StateStore.in_directory(".buttress")
    try:
        return RunHistory(store).recent(name)
    finally:
        store.close()


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def eventually(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``predicate`` in short steps until it holds or ``seconds`` pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_fails_twice_then_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Retries with backoff until the third attempt succeeds: exit 0, output passed through,
    a timestamped log of every attempt and the outcome recorded."""
    flaky = script(tmp_path, "flaky.sh", FLAKY)
    argv = ["run", "--name", "nightly", "--retries", "3", "--backoff", "constant"]
    assert main([*argv, "--delay", "0.01", "--", flaky]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["attempt 1", "attempt 2", "attempt 3"]
    assert captured.err.splitlines() == ["oops 1", "oops 2", "oops 3"]
    [log] = (tmp_path / ".buttress" / "runs" / "nightly").glob("*.log")
    lines = log.read_text().splitlines()
    assert any(line.endswith("[2] out | attempt 2") for line in lines)
    assert any(line.endswith("[2] err | oops 2") for line in lines)
    assert any("[1] run | attempt 1 exited with status 3" in line for line in lines)
    assert any("[1] run | retrying in 0.010s" in line for line in lines)
    assert lines[-1].split(" ", 1)[1].startswith("[0] run | ok: status 0 after 3 attempt(s)")
    assert all(line[:4].isdigit() and line[23] == "Z" for line in lines)  # UTC timestamps
    [run] = runs("nightly")
    assert run["outcome"] == "ok"
    assert run["status"] == 0
    assert run["command"] == [flaky]
    assert [a["status"] for a in run["attempts"]] == [3, 3, 0]
    assert run["log"] == str(log.relative_to(tmp_path))
    assert run["pid"] == os.getpid()


def test_exhausted_retries_exit_with_the_commands_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that keeps failing is run 1 + retries times; the exit status is its own."""
    failing = script(tmp_path, "fail.sh", "#!/bin/sh\necho no >&2\nexit 5\n")
    assert main(["run", "--retries", "2", "--delay", "0.01", "--", failing]) == 5
    err = capsys.readouterr().err
    assert err.count("no") == 3
    assert "fail.sh failed after 3 attempt(s), status 5" in err
    [run] = runs()
    assert (run["name"], run["outcome"], len(run["attempts"])) == ("fail.sh", "failed", 3)


def test_retry_on_limits_the_statuses_retried(tmp_path: Path) -> None:
    """With --retry-on 4, a status 5 is not retried."""
    failing = script(tmp_path, "fail.sh", "#!/bin/sh\nexit 5\n")
    assert main(["run", "--retries", "3", "--retry-on", "4", "--delay", "0.01", "--", failing]) == 5
    assert len(runs()[0]["attempts"]) == 1


def test_missing_command_is_127_and_not_retried(capsys: pytest.CaptureFixture[str]) -> None:
    """A command that does not exist exits 127 after one attempt: retrying cannot help."""
    assert main(["run", "--retries", "3", "--delay", "0.01", "--", "no-such-command-xyz"]) == 127
    assert "cannot run 'no-such-command-xyz'" in capsys.readouterr().err
    assert len(runs()[0]["attempts"]) == 1


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """Past --timeout the group gets SIGTERM, then SIGKILL after --grace: the script (which
    ignores SIGTERM) and its background child both die; exit 124."""
    hang = script(tmp_path, "hang.sh", HANG)
    argv = ["run", "--timeout", "0.5", "--grace", "0.1", "--retries", "1", "--delay", "0.01"]
    assert main([*argv, "--", hang]) == 124
    pids = [int((tmp_path / f).read_text()) for f in ("main.pid", "child.pid")]
    assert eventually(lambda: all(gone(pid) for pid in pids))
    [run] = runs()
    assert run["outcome"] == "timeout"
    assert [(a["status"], a["timed_out"]) for a in run["attempts"]] == [(124, True)] * 2
    log = Path(run["log"]).read_text()
    assert "timed out after 0.5s: SIGTERM to process group" in log
    assert "grace period over: SIGKILL to process group" in log


def test_processes_left_behind_are_stopped(tmp_path: Path) -> None:
    """A background process the command left in its group is stopped when the command exits."""
    leaves = script(tmp_path, "leaves.sh", LEAVES_CHILD)
    assert main(["run", "--grace", "0.2", "--", leaves]) == 0
    child = int((tmp_path / "child.pid").read_text())
    assert eventually(lambda: gone(child))
    assert "SIGTERM to what it left" in Path(runs()[0]["log"]).read_text()


def test_a_second_copy_is_refused_while_the_first_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs with the same lock: the second exits 75 naming the first's pid; SIGTERM to the
    first is forwarded to its command, which dies of it (exit 143); both runs are recorded."""
    sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"]
    first = subprocess.Popen(
        [sys.executable, "-m", "buttress", "run", "--lock", "job", "--", *sleeper],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline() == b"up\n"  # the command runs: the lock is held
        holder = single_instance("job", directory=".buttress/locks").holder()
        assert holder is not None
        assert holder.pid == first.pid
        assert main(["run", "--lock", "job", "--", "true"]) == 75
        err = capsys.readouterr().err
        assert f"'job' is already running: pid {first.pid} on " in err
        assert "time.sleep(30)" in err  # the holder's command
        first.send_signal(signal.SIGTERM)
        assert first.wait(20) == 128 + signal.SIGTERM
    finally:
        first.kill()
        first.communicate()
    interrupted, locked = sorted(runs("job"), key=lambda run: run["outcome"])
    assert (interrupted["outcome"], interrupted["status"]) == ("interrupted", 143)
    assert (locked["outcome"], locked["status"], locked["attempts"]) == ("locked", 75, [])
    assert single_instance("job", directory=".buttress/locks").try_acquire()


def test_wait_lock_gives_up_after_waiting(capsys: pytest.CaptureFixture[str]) -> None:
    """--wait-lock waits for the lock, then refuses with 75 when it stays taken."""
    with single_instance("job", directory=".buttress/locks"):
        assert main(["run", "--lock", "job", "--wait-lock", "0.1", "--", "true"]) == 75
    assert "already running" in capsys.readouterr().err
    assert main(["run", "--lock", "job", "--", "true"]) == 0


def test_failing_health_check_refuses_to_start(
    tmp_path: Path,
    write: Callable[[str], str],
    stopped_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failing critical readiness check: exit 69, the check named, the command never run."""
    config = write(f'[health.checks.db]\nkind = "tcp"\nhost = "127.0.0.1"\nport = {stopped_port}\n')
    touch = ["touch", str(tmp_path / "ran")]
    assert main(["run", "-c", config, "--health-check", "readiness", "--", *touch]) == 69
    assert "health check readiness fails: db" in capsys.readouterr().err
    assert not (tmp_path / "ran").exists()
    assert runs()[0]["outcome"] == "unhealthy"
    assert main(["run", "-c", config, "--health-check", "liveness", "--", *touch]) == 0
    assert (tmp_path / "ran").exists()


def test_failed_runs_go_to_the_dead_letter_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dead-letter adds a failed run to the DLQ (queue `runs`) with what a re-run needs."""
    from buttress.dlq import DeadLetterQueue

    failing = script(tmp_path, "fail.sh", "#!/bin/sh\nexit 4\n")
    assert main(["run", "--dead-letter", "--", failing, "--token=hunter22"]) == 4
    assert "added to the dead letter queue" in capsys.readouterr().err
    with DeadLetterQueue(f"sqlite:///{tmp_path / '.buttress' / 'dlq.db'}") as dlq:
        [letter] = dlq.list().items
    assert letter.queue == "runs"
    record = letter.payload
    assert isinstance(record, dict)
    assert record["command"] == [failing, "--token=***"]
    assert (record["redacted"], record["status"], record["cwd"]) == (True, 4, str(tmp_path))
    assert main(["run", "--dead-letter", "--", "true"]) == 0  # a success is not dead-lettered


def test_outbox_keeps_the_run_when_the_queue_is_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter queue that cannot be opened: the record waits in the outbox table."""
    failing = script(tmp_path, "fail.sh", "#!/bin/sh\nexit 4\n")
    assert main(["run", "--dead-letter", "--dlq", "nosuch://x", "--", failing]) == 4
    assert "run kept in the outbox" in capsys.readouterr().err
    store = StateStore.in_directory(".buttress")
    try:
        [entry] = RunHistory(store).outbox()
    finally:
        store.close()
    assert entry["record"]["command"] == [failing]
    assert entry["run_id"] == runs()[0]["id"]


def test_logs_are_pruned_and_log_dir_is_honoured(tmp_path: Path) -> None:
    """--log-dir puts logs elsewhere; only the newest --keep-logs are kept per name."""
    for _ in range(3):
        assert (
            main(["run", "--log-dir", str(tmp_path / "logs"), "--keep-logs", "2", "--", "true"])
            == 0
        )
    assert len(list((tmp_path / "logs" / "true").glob("*.log"))) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--lock", "../etc", "--", "true"], "name"),
        (["run", "--delay", "0", "--", "true"], "--delay 0"),
    ],
)
def test_bad_options_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad lock name or backoff is a usage error: exit 2 with the reason."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_guard_waits_between_attempts_on_its_clock(tmp_path: Path) -> None:
    """ScriptGuard sleeps the backoff's delays on the injected clock, which also stamps the log."""
    clock = ManualClock()
    out = io.StringIO()
    guard = ScriptGuard(
        ["sh", "-c", "echo tried; exit 2"],
        name="job",
        log_dir=tmp_path,
        retries=2,
        backoff=Backoff.exponential(0.5),
        stdout=out,
        clock=clock,
    )
    outcome = guard.run()
    assert clock.sleeps == [0.5, 1.0]
    assert (outcome.status, outcome.outcome, outcome.duration) == (2, "failed", 1.5)
    assert out.getvalue() == "tried\n" * 3
    lines = Path(outcome.log).read_text().splitlines()
    assert lines[0].startswith("2023-11-14T22:13:20.000Z [0] run | job: sh -c 'echo tried; exit 2'")
    assert "2023-11-14T22:13:21.500Z [3] out | tried" in lines


def test_interrupt_stops_the_command_and_the_retries(tmp_path: Path) -> None:
    """interrupt(SIGTERM) is forwarded to the running command; no further attempt is made."""
    guard = ScriptGuard(
        ["sleep", "30"], name="job", log_dir=tmp_path, retries=3, backoff=Backoff.constant(0.01)
    )

    def stop() -> None:
        if eventually(lambda: guard._pgid is not None):
            guard.interrupt(signal.SIGTERM)

    stopper = threading.Thread(target=stop)
    stopper.start()
    outcome = guard.run()
    stopper.join()
    assert (outcome.outcome, outcome.status, len(outcome.attempts)) == ("interrupted", 143, 1)
