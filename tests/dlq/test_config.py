"""`[dlq]` in buttress.toml: settings, errors, `config show`, opening the queue, and
`buttress serve` serving it (health, admin API, jobs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress import Registry
from buttress.config import ConfigFileError, load_config
from buttress.config._dlq import DLQSettings
from buttress.dlq import DeadLetterQueue, HealthThresholds, Operations
from buttress.ops import generate_token
from tests.serve_support import ServeProcess

FULL = """
[dlq]
url = "sqlite:///{dir}/queue.db"
name = "jobs"
max_attempts = 3
lease = 30
retention_days = 2
process_interval = 60
cleanup_interval = 0

[dlq.handlers]
emails = "json.dumps"

[dlq.health]
parked_warn = false
parked_fail = 10

[dlq.alerts]
parked_above = 5
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "buttress.toml"
    path.write_text(text.format(dir=tmp_path))
    return load_config(path, environ={})


def test_no_table_means_no_queue(tmp_path: Path) -> None:
    """Without [dlq] the configuration has no queue and shows no [dlq] table."""
    config = load_config(environ={})
    assert config.dlq is None
    assert "dlq" not in config.data


def test_full_table(tmp_path: Path) -> None:
    """Every key is read: options, handlers by dotted path, thresholds (false: never),
    alerts, and the job intervals (0: no job)."""
    config = _load(tmp_path, FULL)
    settings = config.dlq  # type: ignore[attr-defined]
    assert isinstance(settings, DLQSettings)
    assert (settings.name, settings.max_attempts, settings.lease) == ("jobs", 3, 30.0)
    assert [(queue, path) for queue, path, _ in settings.handlers] == [("emails", "json.dumps")]
    assert settings.health == HealthThresholds(parked_warn=None, parked_fail=10)
    assert settings.operations() == Operations(
        health=settings.health, process_interval=60.0, cleanup_interval=None
    )
    assert settings.alerts == {"parked_above": 5}


def test_shown_configuration_loads_again(tmp_path: Path) -> None:
    """`config show`'s [dlq] table is a valid [dlq] table giving the same settings."""
    config = _load(tmp_path, FULL)
    shown = config.to_toml()  # type: ignore[attr-defined]
    assert "[dlq]" in shown
    again = tmp_path / "again.toml"
    again.write_text(shown)
    assert load_config(again, environ={}).dlq == config.dlq  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[dlq]\nurll = 'x'\n", "dlq.urll"),
        ("[dlq]\nmax_attempts = 0\n", "dlq.max_attempts"),
        ("[dlq.handlers]\nemails = 'nowhere.at_all'\n", "dlq.handlers.emails"),
        ("[dlq.health]\nparked_warn = 5\nparked_fail = 1\n", "dlq.health.parked_fail"),
        ("[dlq.health]\nparked_warm = 5\n", "dlq.health.parked_warm"),
        ("[dlq.alerts]\ncooldown = -1\n", "dlq.alerts.cooldown"),
        ("dlq = 3\n", "dlq"),
    ],
)
def test_problems_name_their_path(tmp_path: Path, text: str, where: str) -> None:
    """A bad [dlq] value is reported with its path."""
    with pytest.raises(ConfigFileError) as caught:
        _load(tmp_path, text)
    assert where in str(caught.value)


def test_open_attaches_the_queue_and_its_operations(tmp_path: Path) -> None:
    """open() builds the queue (handlers registered) in state_dir by default and attaches
    it and its Operations to the registry."""
    registry = Registry()
    settings = DLQSettings(process_interval=0)
    dlq = settings.open(state_dir=tmp_path / "state", registry=registry)
    try:
        assert dlq.backend.url == f"sqlite:///{tmp_path / 'state' / 'dlq.db'}"
        assert registry.of_kind("dlq") == [dlq]
        operations = registry.get("dlq", "dlq_operations")
        assert operations.process_interval is None
        assert operations.cleanup_interval == 86400.0
    finally:
        dlq.close()


def test_serve_opens_the_configured_queue(tmp_path: Path) -> None:
    """`buttress serve` with [dlq]: /health/dlq answers, the admin API lists its records and
    the two DLQ jobs are scheduled; Ctrl-C stops it cleanly."""
    token, sha = generate_token()
    (tmp_path / "state").mkdir()
    queue = DeadLetterQueue(f"sqlite:///{tmp_path}/state/dlq.db")
    queue.add({"n": 1}, error=ValueError("bad"), queue="payments")
    queue.close()
    (tmp_path / "buttress.toml").write_text(
        '[server]\nstate_dir = "state"\n\n[[server.tokens]]\nname = "ops"\nrole = "viewer"\n'
        f'sha256 = "{sha}"\n\n[dlq]\n'
    )
    with ServeProcess(tmp_path) as served:
        health = served.wait_for("/health/dlq")
        viewer = {"Authorization": f"Bearer {token}"}
        listed = served.client.get("/admin/reliability/dlq/messages", headers=viewer).json()
        jobs = served.client.get("/admin/reliability/jobs", headers=viewer).json()["jobs"]
        _, err = served.stop()
    assert (health.status_code, health.json()["status"]) == (200, "warn")  # one parked
    assert [item["payload"] for item in listed["items"]] == [{"n": 1}]
    assert {"dlq-process", "dlq-cleanup"} <= {job["name"] for job in jobs}
    assert served.returncode == 0, err
    assert "Traceback" not in err
