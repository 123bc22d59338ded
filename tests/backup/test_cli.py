"""`buttress backup ...` and `buttress wal push|fetch` from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from buttress.cli import main

from .conftest import make_tree, snapshot


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory, with no store from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("BUTTRESS_BACKUP_STORE", "BUTTRESS_BACKUP_CATALOG", "BUTTRESS_WAL_ARCHIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


def test_create_list_show_restore_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole cycle with --json: create (configuring the source), incremental, list, show,
    restore into an empty directory, verify --deep."""
    tree = make_tree(tmp_path / "src")
    store = ["--store", str(tmp_path / "store")]
    full = _json(
        capsys, ["backup", "create", "--name", "site", "--files", str(tree), *store, "--json"]
    )
    assert isinstance(full, dict)
    assert full["kind"] == "full"
    assert full["status"] == "completed"
    (tree / "new.txt").write_text("new")
    inc = _json(
        capsys, ["backup", "create", "--name", "site", "--type", "incremental", *store, "--json"]
    )
    assert isinstance(inc, dict)
    assert inc["parent"] == full["id"]
    listed = _json(capsys, ["backup", "list", *store, "--json"])
    assert isinstance(listed, list)
    assert [b["id"] for b in listed] == [full["id"], inc["id"]]
    shown = _json(capsys, ["backup", "show", "--backup-id", inc["id"], *store, "--json"])
    assert isinstance(shown, dict)
    assert {a["name"] for a in shown["artifacts"]} == {
        "data.tar",
        "manifest.jsonl",
    }
    out = tmp_path / "restored"
    restored = _json(
        capsys,
        [
            "backup",
            "restore",
            "--backup-id",
            inc["id"],
            "--destination",
            str(out),
            *store,
            "--json",
        ],
    )
    assert isinstance(restored, dict)
    assert restored["chain"] == [full["id"], inc["id"]]
    assert snapshot(out) == snapshot(tree)
    verified = _json(capsys, ["backup", "verify", "--name", "site", "--deep", *store, "--json"])
    assert isinstance(verified, dict)
    assert verified["ok"] is True


def test_human_output_and_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: readable lines; a refused restore exits 1 with the reason on stderr;
    bad usage exits 2."""
    tree = make_tree(tmp_path / "src")
    store = ["--store", str(tmp_path / "store")]
    assert (
        main(
            ["backup", "create", "--name", "site", "--files", str(tree), "--retention", "7", *store]
        )
        == 0
    )
    assert "full backup site-" in capsys.readouterr().out
    assert main(["backup", "list", *store]) == 0
    assert "completed" in capsys.readouterr().out
    assert (
        main(["backup", "restore", "--backup-id", "site-x", "--destination", str(tree), *store])
        == 1
    )
    assert "no backup 'site-x'" in capsys.readouterr().err
    assert (
        main(
            ["backup", "create", "--name", "site", "--files", str(tree), "--sqlite", "x.db", *store]
        )
        == 2
    )
    assert "give one of" in capsys.readouterr().err
    assert main(["backup", "verify", *store]) == 2


def test_drill_and_alias_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """drill and test-recovery run the same drill; a failed check exits 1; drills lists both."""
    tree = make_tree(tmp_path / "src")
    store = ["--store", str(tmp_path / "store")]
    assert main(["backup", "create", "--name", "site", "--files", str(tree), *store]) == 0
    capsys.readouterr()
    ok = _json(capsys, ["backup", "drill", "--name", "site", "--file", "run.sh", *store, "--json"])
    assert isinstance(ok, dict)
    assert ok["ok"]
    assert ok["rto_seconds"] >= 0
    bad = _json(
        capsys, ["backup", "test-recovery", "--name", "site", "--file", "nope", *store, "--json"], 1
    )
    assert isinstance(bad, dict)
    assert not bad["ok"]
    history = _json(capsys, ["backup", "drills", "--name", "site", *store, "--json"])
    assert isinstance(history, list)
    assert [d["ok"] for d in history] == [False, True]


def test_prune_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prune --dry-run --keep-last 1 lists the older backup and deletes nothing."""
    tree = make_tree(tmp_path / "src")
    store = ["--store", str(tmp_path / "store")]
    for _ in range(2):
        assert main(["backup", "create", "--name", "site", "--files", str(tree), *store]) == 0
    capsys.readouterr()
    dry = _json(capsys, ["backup", "prune", "--dry-run", "--keep-last", "1", *store, "--json"])
    assert isinstance(dry, dict)
    assert dry["dry_run"]
    assert len(dry["deleted"]) == 1
    assert main(["backup", "prune", "--keep-last", "1", *store]) == 0
    assert "deleted 1 backups" in capsys.readouterr().out
    listed = _json(capsys, ["backup", "list", *store, "--json"])
    assert isinstance(listed, list)
    assert len(listed) == 1


def test_encrypted_backup_needs_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--key-file encrypts; a restore with another key exits 1 saying "wrong key"."""
    tree = make_tree(tmp_path / "src")
    store = ["--store", str(tmp_path / "store")]
    key = tmp_path / "backup.key"
    key.write_text(os.urandom(32).hex())
    other = tmp_path / "other.key"
    other.write_text(os.urandom(32).hex())
    made = _json(
        capsys,
        [
            "backup",
            "create",
            "--name",
            "s",
            "--files",
            str(tree),
            "--key-file",
            str(key),
            *store,
            "--json",
        ],
    )
    assert isinstance(made, dict)
    assert made["key_id"]
    code = main(
        [
            "backup",
            "restore",
            "--backup-id",
            made["id"],
            "--destination",
            str(tmp_path / "o"),
            "--key-file",
            str(other),
            *store,
        ]
    )
    assert code == 1
    assert "wrong key" in capsys.readouterr().err


def test_wal_push_and_fetch_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """push stores (twice is fine); fetch writes the file; a missing name exits 1; a damaged
    one exits 200 so that PostgreSQL stops recovery."""
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(os.urandom(50_000))
    archive = ["--archive", str(tmp_path / "wal")]
    for _ in range(2):
        assert main(["wal", "push", str(segment), segment.name, *archive]) == 0
    assert main(["wal", "fetch", segment.name, str(tmp_path / "got"), *archive]) == 0
    assert (tmp_path / "got").read_bytes() == segment.read_bytes()
    assert main(["wal", "fetch", "000000010000000000000002", str(tmp_path / "x"), *archive]) == 1
    stored = tmp_path / "wal" / f"{segment.name}.zst"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1
    stored.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["wal", "fetch", segment.name, str(tmp_path / "bad"), *archive]) == 200
    assert "SHA-256" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    segment.write_bytes(b"other content")
    assert main(["wal", "push", str(segment), segment.name, *archive]) == 1
