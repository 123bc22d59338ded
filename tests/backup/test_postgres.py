"""PostgreSQL logical backups against the real server: dump, drop, restore, compare row for row."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buttress.backup import BackupManager, PostgresDump
from buttress.errors import BackupError, ConfigError
from tests.servers import postgres_dsn, unreachable

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import make_conninfo  # noqa: E402

TABLES = {
    "customers": "SELECT * FROM customers ORDER BY id",
    "orders": "SELECT * FROM orders ORDER BY id",
    "audit.events": "SELECT * FROM audit.events ORDER BY id",
}


def _admin(dsn: str) -> Any:
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture
def source_db() -> Iterator[str]:
    """A database of our own on the test server, filled with varied data; dropped afterwards."""
    if shutil.which("pg_dump") is None:
        unreachable("pg_dump", "PATH", FileNotFoundError("pg_dump is not installed"))
    base = postgres_dsn()
    name = f"buttress_bk_{secrets.token_hex(4)}"
    with _admin(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(base, dbname=name)
    try:
        with _admin(dsn) as conn:
            conn.execute(
                "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL,"
                " balance numeric(12,2), tags jsonb, photo bytea, joined timestamptz)"
            )
            conn.execute(
                "CREATE TABLE orders (id bigserial PRIMARY KEY,"
                " customer int REFERENCES customers(id), amount int, note text)"
            )
            conn.execute("CREATE INDEX orders_customer ON orders (customer)")
            conn.execute("CREATE SCHEMA audit")
            conn.execute("CREATE TABLE audit.events (id int PRIMARY KEY, what text)")
            conn.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 900")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO customers (name, balance, tags, photo, joined)"
                    " VALUES (%s, %s, %s, %s, now() - %s * interval '1 hour')",
                    [
                        (f"c{i} \u00e9'\"", i * 1.25, f'{{"i": {i}}}', bytes([i % 256]) * i, i)
                        for i in range(1, 301)
                    ],
                )
                cur.executemany(
                    "INSERT INTO orders (customer, amount, note) VALUES (%s, %s, %s)",
                    [(i % 300 + 1, (i * 37) % 1000, None if i % 7 else "x") for i in range(3000)],
                )
                cur.executemany(
                    "INSERT INTO audit.events VALUES (%s, %s)", [(i, f"e{i}") for i in range(50)]
                )
        yield dsn
    finally:
        with _admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(sql).fetchall() for table, sql in TABLES.items()}


def test_dump_drop_restore_compare_row_for_row(
    manager: BackupManager, source_db: str, tmp_path: Path
) -> None:
    """A database is dumped, dropped, recreated empty, restored with parallel jobs, and every
    row of every table (and the sequence positions) comes back identical."""
    before = _rows(source_db)
    with _admin(source_db) as conn:
        sequence = conn.execute("SELECT last_value FROM orders_id_seq").fetchone()
    manager.configure("shop", PostgresDump(source_db, jobs=2))
    backup = manager.create("shop")
    assert backup.stats["bytes"] > 0
    assert backup.data_time is not None
    base = postgres_dsn()
    name = psycopg.conninfo.conninfo_to_dict(source_db)["dbname"]
    with _admin(base) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    result = manager.restore(backup.id, source_db)
    assert result.stats["jobs"] == 2
    assert sorted(result.stats["tables"]) == ["audit.events", "public.customers", "public.orders"]
    after = _rows(source_db)
    assert after == before
    assert sum(len(rows) for rows in after.values()) == 3350
    with _admin(source_db) as conn:
        assert conn.execute("SELECT last_value FROM orders_id_seq").fetchone() == sequence
        assert conn.execute("SELECT count(*) FROM big_orders").fetchone()[0] > 0


def test_restore_into_a_non_empty_database_is_refused(
    manager: BackupManager, source_db: str
) -> None:
    """Restoring over the live database is refused unless forced; forced, it replaces it."""
    manager.configure("shop", PostgresDump(source_db))
    backup = manager.create("shop")
    with _admin(source_db) as conn:
        conn.execute("DELETE FROM audit.events WHERE id >= 10")
    with pytest.raises(BackupError, match="not empty"):
        manager.restore(backup.id, source_db)
    manager.restore(backup.id, source_db, force=True)
    with _admin(source_db) as conn:
        assert conn.execute("SELECT count(*) FROM audit.events").fetchone()[0] == 50


def test_drill_in_a_scratch_database(manager: BackupManager, source_db: str) -> None:
    """A drill restores into a scratch database, runs the queries, takes RPO from the
    freshness query, and drops the scratch database afterwards."""
    manager.configure("shop", PostgresDump(source_db))
    manager.create("shop")
    result = manager.drill(
        "shop",
        queries=["SELECT count(*) = 3000 FROM orders", "SELECT count(*) = 300 FROM customers"],
        freshness_query="SELECT max(joined) FROM customers",
    )
    assert result.ok, result.error
    assert [c.name for c in result.checks][:2] == ["restore", "tables restored"]
    assert result.rpo_seconds is not None
    assert result.rpo_seconds >= 0
    with _admin(postgres_dsn()) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'buttress_scratch_%'"
        ).fetchone()[0]
    assert left == 0
    deep = manager.verify(manager.list("shop")[-1].id, deep=True)
    assert deep.ok
    assert deep.checks[-1].name == "tables restored"


def test_dsn_with_a_password_is_refused() -> None:
    """A DSN holding a password is refused (the catalog would store it); the message masks it."""
    for dsn in ("postgresql://app:hunter2@db/app", "host=db password=hunter2 dbname=app"):
        with pytest.raises(ConfigError, match="password") as info:
            PostgresDump(dsn)
        assert "hunter2" not in str(info.value)


def test_restore_target_password_goes_to_the_environment() -> None:
    """A target DSN's password is split off (for PGPASSWORD), never left in the arguments."""
    from buttress.backup._pgtools import split_password

    dsn, password = split_password("postgresql://app:s3cret@db:5432/shop")
    assert password == "s3cret"
    assert "s3cret" not in dsn
    assert "dbname=shop" in dsn
    assert split_password("host=db dbname=shop") == ("host=db dbname=shop", None)
