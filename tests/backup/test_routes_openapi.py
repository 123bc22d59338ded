"""The backup routes match the OpenAPI document (schemathesis, with a plan holding backups
and a drill)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from buttress import Registry
from buttress.backup import BackupManager, BackupPlan, Files, ScheduledBackup, ScheduledDrill
from buttress.health import HealthRegistry
from buttress.ops import create_app, generate_token

OPERATOR, OPERATOR_SHA = generate_token()
CONFIG = schemathesis.Config.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": OPERATOR}}}})
FOLDER = Path(tempfile.mkdtemp(prefix="buttress-backup-openapi-"))


def _build_app() -> Any:
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
    return create_app(
        registry,
        health=HealthRegistry(),
        tokens=[("alice", "operator", OPERATOR_SHA)],
        state_dir=":memory:",
        scheduler=None,
        auth_failures=1_000_000,
    )


APP = _build_app()
schema = schemathesis.openapi.from_asgi("/admin/openapi.json", APP, config=CONFIG).include(
    path_regex="backups"
)


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Iterator[None]:
    """Close the module's app and catalog after its tests, and remove the folder."""
    yield
    APP.state.ops.close()
    for plan in APP.state.ops.registry.of_kind("backup"):
        plan.manager.catalog.close()
    shutil.rmtree(FOLDER, ignore_errors=True)


def test_every_backup_route_is_documented() -> None:
    """The document lists each backup route with the methods it serves."""
    documented = {
        (path, method.upper())
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if "/backups" in path
    }
    served = {
        (route.path, method)
        for route in APP.routes
        for method in route.methods or ()
        if method != "HEAD" and "/backups" in route.path
    }
    assert served == documented
    assert len(served) == 5


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_backup_routes_conform(case: schemathesis.Case[Any]) -> None:
    """Generated requests get documented statuses, media types and bodies. (Acceptance of
    schema-valid data is not checked: a generated id or name is almost never one the catalog
    knows, and those answer a documented 404.)"""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
