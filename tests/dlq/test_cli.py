"""`buttress dlq ...`: list, show, retry, edit, discard, purge, stats and worker, on the queue
of [dlq] (or the default .buttress/dlq.db), with the changes in the ops audit log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buttress.cli import _dlq_render, main
from buttress.dlq import DeadLetterQueue, Filter, Status
from buttress.ops import AuditLog, StateStore

ROOT = Path(__file__).resolve().parents[2]


class Declined(Exception):
    """A permanent error (HTTP 402)."""

    status_code = 402


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory without BUTTRESS_* variables, wide and without colour."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BUTTRESS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def dlq(tmp_path: Path) -> Iterator[DeadLetterQueue]:
    """The queue the commands open by default: .buttress/dlq.db."""
    (tmp_path / ".buttress").mkdir()
    queue = DeadLetterQueue(f"sqlite:///{tmp_path}/.buttress/dlq.db")
    yield queue
    queue.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``buttress dlq ARGS``; its exit status, stdout and stderr."""
    status = main(["dlq", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def audited(tmp_path: Path) -> list[tuple[str, str]]:
    """(action, target) of the ops audit log's entries, oldest first."""
    store = StateStore.in_directory(tmp_path / ".buttress")
    try:
        return [(e.action, e.target) for e in reversed(AuditLog(store).page(limit=100))]
    finally:
        store.close()


def test_list_and_show(capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue) -> None:
    """list prints a table (and JSON with --json, filtered); show prints one record whole."""
    id = dlq.add({"to": "ada"}, error=ConnectionError("smtp down"), queue="emails")
    dlq.add({"card": 1}, error=Declined("declined"), queue="payments")
    status, out, _ = run(capsys, "list")
    assert status == 0
    assert "smtp down" in out
    assert "payments" in out
    status, out, _ = run(capsys, "list", "--queue", "emails", "--json")
    assert [item["id"] for item in json.loads(out)["items"]] == [id]
    status, out, _ = run(capsys, "show", id)
    assert '"to": "ada"' in out
    assert "ConnectionError: smtp down" in out
    status, out, _ = run(capsys, "show", id, "--json")
    assert json.loads(out)["history"][0]["error_type"] == "ConnectionError"
    assert run(capsys, "show", "999")[0] == 1
    assert run(capsys, "list", "--status", "lost")[0] == 2


def test_retry_by_id_and_by_filter(
    capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue, tmp_path: Path
) -> None:
    """retry ID makes one record due; retry --queue retries the matches; each is audited;
    retry without ids, filters or --all is refused."""
    one = dlq.add({"n": 1}, error=Declined("no"), queue="payments")
    dlq.add_many([2, 3], error=Declined("no"), queue="emails")
    status, out, _ = run(capsys, "retry", one, "--reason", "card updated")
    assert (status, dlq.get(one).status) == (0, Status.PENDING)  # type: ignore[union-attr]
    status, out, _ = run(capsys, "retry", "--queue", "emails", "--json")
    assert json.loads(out)["count"] == 2
    assert audited(tmp_path) == [("dlq.retry", f"dlq/{one}"), ("dlq.retry_many", "dlq")]
    assert run(capsys, "retry")[0] == 2
    assert run(capsys, "retry", one, "--queue", "x")[0] == 2


def test_edit_then_retry(
    capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue, tmp_path: Path
) -> None:
    """edit --payload replaces the payload (--retry also retries); bad JSON is refused."""
    id = dlq.add({"amount": "12,50"}, error=ValueError("not a number"), queue="payments")
    status, _out, _ = run(capsys, "edit", id, "--payload", '{"amount": 12.5}', "--retry")
    letter = dlq.get(id)
    assert status == 0
    assert letter is not None
    assert (letter.payload, letter.status) == ({"amount": 12.5}, Status.PENDING)
    assert run(capsys, "edit", id, "--payload", "{nope")[0] == 2
    file = tmp_path / "payload.json"
    file.write_text('{"amount": 13}')
    assert run(capsys, "edit", id, "--payload-file", str(file))[0] == 0
    assert getattr(dlq.get(id), "payload", None) == {"amount": 13}
    assert audited(tmp_path)[0] == ("dlq.edit", f"dlq/{id}")


def test_discard_needs_a_reason(capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue) -> None:
    """discard without --reason is a usage error; with one the records are discarded."""
    ids = dlq.add_many([1, 2], error=ConnectionError("down"))
    assert run(capsys, "discard", *ids)[0] == 2
    status, out, _ = run(capsys, "discard", *ids, "--reason", "duplicates")
    assert (status, out.strip()) == (0, "discarded 2")
    assert dlq.stats().by_status["discarded"] == 2
    assert run(capsys, "discard", ids[0], "--reason", "again")[0] == 1  # not open any more


def test_purge_asks_unless_yes(capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue) -> None:
    """purge needs filters or --all, and --yes when it cannot ask; then deletes the matches."""
    dlq.add_many([1, 2, 3], error=ConnectionError("down"), queue="emails")
    dlq.add({"keep": True}, error=ConnectionError("down"), queue="payments")
    assert run(capsys, "purge")[0] == 2
    status, _, err = run(capsys, "purge", "--queue", "emails")
    assert status == 2
    assert "3 match" in err
    status, out, _ = run(capsys, "purge", "--queue", "emails", "--yes", "--json")
    assert json.loads(out)["count"] == 3
    assert dlq.stats().total == 1


def test_purge_deletes_only_what_was_confirmed(
    capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that arrives while purge waits for its answer was not counted in the question,
    so it is not deleted."""
    dlq.add_many([1, 2], error=ConnectionError("down"), queue="emails")
    asked = []

    def confirm(text: str, **_: object) -> bool:
        asked.append(text)
        late = DeadLetterQueue(dlq.backend)  # another writer, while the question waits
        late.add({"late": True}, error=ConnectionError("down"), queue="emails")
        return True

    monkeypatch.setattr("buttress.cli._dlq.typer.confirm", confirm)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    status, out, _ = run(capsys, "purge", "--queue", "emails", "--json")
    assert status == 0
    assert asked == ["Delete 2 dead letters for good?"]
    assert json.loads(out)["count"] == 2
    assert [x.payload for x in dlq.list(Filter(queue="emails")).items] == [{"late": True}]


def test_stats(capsys: pytest.CaptureFixture[str], dlq: DeadLetterQueue) -> None:
    """stats prints counts by queue and status (and all of Stats with --json)."""
    dlq.add({"n": 1}, error=ConnectionError("down"), queue="emails")
    status, out, _ = run(capsys, "stats")
    assert status == 0
    assert "emails" in out
    assert "ConnectionError 1" in out
    data = json.loads(run(capsys, "stats", "--json")[1])
    assert data["by_queue"]["emails"]["pending"] == 1


def test_url_option_and_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--url picks a queue; without it [dlq] url of buttress.toml does."""
    other = DeadLetterQueue(f"sqlite:///{tmp_path}/other.db", name="jobs")
    other.add({"x": 1}, error=ConnectionError("down"), queue="jobs")
    other.close()
    _status, out, _ = run(capsys, "stats", "--json", "--url", f"sqlite:///{tmp_path}/other.db")
    assert json.loads(out)["total"] == 1
    (tmp_path / "buttress.toml").write_text(f'[dlq]\nurl = "sqlite:///{tmp_path}/other.db"\n')
    assert json.loads(run(capsys, "stats", "--json")[1])["total"] == 1
    assert run(capsys, "stats", "--url", "ftp://nowhere")[0] == 2


def test_batches_advance_the_progress(dlq: DeadLetterQueue) -> None:
    """A batch action goes CHUNK records at a time, each within the filter, and reports each
    step to the progress bar."""
    dlq.add_many(list(range(1200)), error=Declined("no"), queue="emails")
    dlq.add({"other": 1}, error=Declined("no"), queue="payments")
    found = Filter(queue="emails")
    ids = _dlq_render.matching_ids(dlq, found)
    steps: list[int] = []
    done = _dlq_render.in_batches(ids, found, dlq.retry_many, steps.append)
    assert (done, steps) == (1200, [500, 500, 200])
    assert dlq.stats().by_queue["payments"]["parked"] == 1


def test_worker_runs_until_interrupted(tmp_path: Path, dlq: DeadLetterQueue) -> None:
    """`buttress dlq worker` resolves due messages with the configured handler, and Ctrl-C
    stops it with status 0 and a summary."""
    (tmp_path / "handlers.py").write_text("def ok(letter):\n    return None\n")
    (tmp_path / "buttress.toml").write_text('[dlq.handlers]\nemails = "handlers.ok"\n')
    ids = dlq.add_many([1, 2], error=ConnectionError("down"), queue="emails")
    dlq.retry_many(Filter(queue="emails"))  # due now
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'src'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "buttress", "dlq", "worker", "--idle", "0.05"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while any(getattr(dlq.get(i), "status", None) is not Status.RESOLVED for i in ids):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker resolved nothing"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "resolved 2" in err
    assert "Traceback" not in err
