"""The backup routes match the OpenAPI document (schemathesis, with a plan holding backups
and a drill)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.checks import positive_data_acceptance
from starlette.applications import Starlette

from buttress import Registry
from buttress.backup import BackupManager, BackupPlan, Files, ScheduledBackup, ScheduledDrill
from tests.openapi_support import (
    close_after_module,
    conformance,
    conformance_app,
    openapi_schema,
    routes,
)

FOLDER = Path(tempfile.mkdtemp(prefix="buttress-backup-openapi-"))


def _build_app() -> Starlette:
    """An ops app with a plan: a full and an incremental of a small tree, and a drill."""
    tree = FOLDER / "src"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    manager = BackupManager(FOLDER / "catalog.db", FOLDER / "store")
    manager.configure("site", Files(tree))
    plan = BackupPlan(
        manager,
        backups=[ScheduledBackup("site", every=3600, kind="incremental")],
        drills=[ScheduledDrill("site", files=["a.txt"])],
    )
    plan.run_backup("site")
    (tree / "b.txt").write_text("b")
    plan.run_backup("site")
    plan.run_drill("site")
    registry = Registry()
    plan.attach(registry)
    return conformance_app(registry)


APP = _build_app()
schema = openapi_schema(APP, "backups")
_close_app = close_after_module(
    APP,
    "backup",
    close=lambda plan: plan.manager.catalog.close(),
    then=lambda: shutil.rmtree(FOLDER, ignore_errors=True),
)


def test_every_backup_route_is_documented() -> None:
    """The document lists each backup route with the methods it serves."""
    documented, served = routes(schema, APP, "/backups")
    assert served == documented
    assert len(served) == 5


@schema.parametrize()
@conformance(max_examples=6)
def test_backup_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (Acceptance of
    schema-valid data is not checked: a generated id or name is almost never one the catalog
    knows, and those answer a documented 404.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
