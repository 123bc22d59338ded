"""`[backup]` in buttress.toml: settings, every problem named, `config show`, opening the plan,
and `buttress serve` serving it (admin API, jobs, metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buttress import Registry
from buttress.backup import BackupPlan, RetentionPolicy
from buttress.config import Config, ConfigFileError, load_config
from buttress.errors import ConfigError
from buttress.ops import generate_token
from tests.serve_support import ServeProcess

from .conftest import make_tree

FULL = """
[backup]
store = "{dir}/backups"
key_env = "TEST_BACKUP_KEY"
compression = "gzip"

[backup.jobs.site]
strategy = "files"
source = "{dir}/src"
exclude = ["*.tmp"]
type = "incremental"
every = 86400
offset = 7200
full_every = 604800
keep_days = 2
retention = {{ last = 3, daily = 7 }}

[backup.jobs.db]
strategy = "sqlite"
source = "{dir}/app.db"

[backup.drills.site]
every = 604800
files = ["docs/readme.txt"]
"""


def _load(tmp_path: Path, text: str, **env: str) -> Config:
    path = tmp_path / "buttress.toml"
    path.write_text(text.format(dir=tmp_path))
    return load_config(path, environ=env)


def test_every_setting_is_read(tmp_path: Path) -> None:
    """The store gives the catalog and destination; jobs and drills become schedules."""
    settings = _load(tmp_path, FULL).backup
    assert settings is not None
    assert settings.catalog == str(tmp_path / "backups" / "catalog.db")
    assert settings.destination == str(tmp_path / "backups" / "artifacts")
    assert (settings.key_env, settings.key_file, settings.compression) == (
        "TEST_BACKUP_KEY",
        None,
        "gzip",
    )
    site, db = sorted(settings.jobs, key=lambda j: j.schedule.name, reverse=True)
    assert site.schedule.every == 86400
    assert site.schedule.offset == 7200
    assert site.schedule.kind == "incremental"
    assert site.schedule.keep_for == 2 * 86400
    assert site.schedule.retention == RetentionPolicy(last=3, daily=7)
    assert site.source.spec()["exclude"] == ["*.tmp"]
    assert db.source.strategy == "sqlite"
    assert db.schedule.every is None
    (drill,) = settings.drills
    assert (drill.name, drill.every, tuple(drill.files)) == ("site", 604800, ("docs/readme.txt",))


def test_no_table_no_backups(tmp_path: Path) -> None:
    """Without [backup] there are no settings."""
    assert _load(tmp_path, "").backup is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[backup]\nstore = "s"\nkey = "00"', "backup.key: must not hold the key itself"),
        ("[backup]\ncompression = 'zstd'", "backup.destination: is needed"),
        ('[backup]\nstore = "s"\nkey_file = "k"\nkey_env = "V"', "backup.key_env: must not"),
        ('[backup]\nstore = "s"\nbogus = 1', "backup.bogus: unknown key"),
        ('[backup]\nstore = "s"\ncompression = "lz4"', "backup.compression: must be one of"),
        ('[backup]\nstore="s"\n[backup.jobs.a]\nstrategy = "tape"\nsource = "x"', "strategy"),
        ('[backup]\nstore="s"\n[backup.jobs.a]\nstrategy = "files"', "backup.jobs.a.source"),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="sqlite"\nsource="x"\ntype="incremental"',
            "backup.jobs.a.type: must be full",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="files"\nsource="x"\ntype="weekly"',
            "backup.jobs.a.type: must be full, incremental",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="files"\nsource="x"\nevery=-1',
            "backup.jobs.a.every",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="sqlite"\nsource="x"\nexclude=["y"]',
            "backup.jobs.a.exclude: does not apply to sqlite",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="files"\nsource="x"\n'
            "retention = {{ hourly = 3 }}",
            "backup.jobs.a.retention.hourly: unknown key",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="postgres"\n'
            'source="postgresql://u:pw@h/db"',
            "must not hold a password",
        ),
        (
            '[backup]\nstore="s"\n[backup.jobs.a]\nstrategy="pitr"\nsource="host=/tmp"',
            "backup.jobs.a.archive",
        ),
        ('[backup]\nstore="s"\n[backup.drills.a]\nqueries = "SELECT 1"', "backup.drills.a.queries"),
        ('[backup]\nstore="s"\n[backup.drills.a]\nevery = 0', "backup.drills.a.every"),
    ],
)
def test_problems_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad setting is reported with its path."""
    with pytest.raises(ConfigFileError) as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_config_show_prints_the_section(tmp_path: Path) -> None:
    """`config show` data has the catalog, destination, key variable (not a key) and jobs."""
    data = _load(tmp_path, FULL).data["backup"]
    assert data["key_env"] == "TEST_BACKUP_KEY"
    assert data["catalog"].endswith("catalog.db")
    assert data["jobs"]["site"]["type"] == "incremental"
    assert data["drills"]["site"]["files"] == ["docs/readme.txt"]


def test_open_builds_and_attaches_the_plan(tmp_path: Path) -> None:
    """open() reads the key from the variable, configures every source encrypted with it and
    attaches the plan; a missing key variable is a ConfigError naming key_env."""
    make_tree(tmp_path / "src")
    settings = _load(tmp_path, FULL).backup
    assert settings is not None
    with pytest.raises(ConfigError, match="key_env"):
        settings.open()
    os.environ["TEST_BACKUP_KEY"] = "ab" * 32
    try:
        registry = Registry()
        plan = settings.open(registry=registry)
        assert registry.of_kind("backup") == [plan]
        assert isinstance(plan, BackupPlan)
        assert sorted(plan.backups) == ["db", "site"]
        backup = plan.run_backup("site")
    finally:
        del os.environ["TEST_BACKUP_KEY"]
    assert backup.key_id is not None
    assert backup.compression == "gzip"
    assert plan.manager.catalog.source("site") is not None


def test_serve_opens_the_configured_backups(tmp_path: Path) -> None:
    """`buttress serve` with [backup]: the admin API lists the names, the jobs are scheduled,
    /metrics has the backup metrics; Ctrl-C stops it cleanly."""
    token, sha = generate_token()
    make_tree(tmp_path / "src")
    text = FULL.replace('key_env = "TEST_BACKUP_KEY"\n', "")
    (tmp_path / "buttress.toml").write_text(
        '[server]\nstate_dir = "state"\n\n[[server.tokens]]\nname = "ops"\nrole = "viewer"\n'
        f'sha256 = "{sha}"\n' + text.format(dir=tmp_path)
    )
    from buttress.config import load_config as load

    plan = load(tmp_path / "buttress.toml", environ={}).backup.open()  # type: ignore[union-attr]
    plan.manager.create("site")
    plan.manager.catalog.close()
    viewer = {"Authorization": f"Bearer {token}"}
    with ServeProcess(tmp_path) as served:
        listed = served.wait_for("/admin/reliability/backups", headers=viewer, within=30)
        jobs = served.client.get("/admin/reliability/jobs", headers=viewer).json()["jobs"]
        metrics = served.client.get("/metrics", headers=viewer).text
        _, err = served.stop()
    assert listed.status_code == 200
    names = {item["name"]: item for item in listed.json()["backups"]}
    assert sorted(names) == ["db", "site"]
    assert names["site"]["completed"] == 1
    assert {"backup:site", "drill:site"} <= {job["name"] for job in jobs}
    assert "backup:db" not in {job["name"] for job in jobs}  # no `every`: not scheduled
    assert 'buttress_backup_size_bytes{name="site"}' in metrics
    assert served.returncode == 0, err
    assert "Traceback" not in err


def test_serve_refuses_an_unreadable_key(tmp_path: Path) -> None:
    """A key file that cannot be read stops `buttress serve` with exit 2, naming it."""
    (tmp_path / "buttress.toml").write_text(
        f'[backup]\nstore = "{tmp_path}/b"\nkey_file = "{tmp_path}/missing.key"\n'
    )
    env = {**os.environ}
    env.pop("BUTTRESS_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "buttress", "serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "[backup]" in done.stderr
    assert "key_file" in done.stderr
