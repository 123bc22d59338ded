"""The dashboard's backups panel in headless Chromium against a real uvicorn server (see
``browser_support``): real file backups, a failed one and a real drill in a temporary directory;
per name the last success (stale when older than its schedule allows), the last failure, the
sizes and the last drill's RTO and RPO; verify and a drill through the dialog; no button for a
viewer. (That an app without a plan never shows the panel is checked with the other panels in
``test_dashboard_browser``.)
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from buttress import Registry
from buttress._clock import SystemClock
from buttress.backup import BackupManager, BackupPlan, Files, ScheduledBackup, ScheduledDrill
from buttress.errors import BackupError
from buttress.health import HealthRegistry
from buttress.ops import _routes_backups as routes
from buttress.ops import create_app

from .browser_support import WAIT, confirm, launch, open_page, serving
from .conftest import OPERATOR, TOKENS, VIEWER

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HOUR = 3600.0
DAY = 86400.0
DASH = "\u2013"  # what the page shows where there is no value


class _Behind(SystemClock):
    """The real clock with its wall time set back ``behind`` seconds: backups made hours ago."""

    def __init__(self) -> None:
        self.behind = 0.0

    def time(self) -> float:
        """The wall time, ``behind`` seconds ago."""
        return time.time() - self.behind


def _duration(seconds: float) -> str:
    """A duration as the page writes it (``duration`` in views.js)."""
    if 0 < seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{math.floor(seconds * 1000 + 0.5)} ms"
    if seconds < 10:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    if seconds < 60:
        return f"{math.floor(seconds + 0.5)} s"
    s = math.floor(seconds)
    if s < 3600:
        return f"{s // 60} m {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} m"


def _tree(root: Path, size: int) -> Path:
    root.mkdir()
    (root / "readme.txt").write_text("backed up\n")
    (root / "data.bin").write_bytes(os.urandom(size))  # stored as large as it is
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with launch() as browser:
        yield browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A plan with three names on a local directory: ``site`` (two backups an hour or two old,
    daily, drilled half an hour ago), ``reports`` (hourly, backed up three hours ago: stale)
    and ``ledger`` (its newest attempt failed); reads need a token."""
    root = tmp_path_factory.mktemp("backups")
    clock = _Behind()
    manager = BackupManager(root / "catalog.db", root / "store", clock=clock)
    site = _tree(root / "site", 20_000)
    manager.configure("site", Files(site))
    manager.configure("reports", Files(_tree(root / "reports", 1_000)))
    ledger = _tree(root / "ledger", 1_000)
    manager.configure("ledger", Files(ledger))
    plan = BackupPlan(
        manager,
        backups=[
            ScheduledBackup("site", every=DAY),
            ScheduledBackup("reports", every=HOUR),
            ScheduledBackup("ledger", every=DAY),
        ],
        drills=[ScheduledDrill("site", files=["readme.txt"])],
    )
    clock.behind = 3 * HOUR
    plan.run_backup("reports")
    plan.run_backup("ledger")
    clock.behind = 2 * HOUR
    first = plan.run_backup("site")
    (site / "more.bin").write_bytes(os.urandom(50_000))
    shutil.rmtree(ledger)
    with pytest.raises(BackupError):
        plan.run_backup("ledger")
    clock.behind = HOUR
    second = plan.run_backup("site")
    clock.behind = HOUR / 2
    drill = plan.run_drill("site")
    assert drill.ok
    clock.behind = 0.0  # a drill from the page: the newest data is an hour old
    registry = Registry()
    plan.attach(registry)
    health = HealthRegistry()
    for name in [c.name for c in health.checks()]:
        health.remove(name)
    app = create_app(registry, health=health, tokens=TOKENS, state_dir=":memory:", scheduler=None)
    try:
        with serving(app) as url:
            yield {"url": url, "plan": plan, "backups": (first, second), "drill": drill}
    finally:
        app.state.ops.close()
        manager.catalog.close()


def _sign_in(page: Page, token: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#dialog-title")).to_have_text("Sign in to view", timeout=WAIT)
    page.fill("#token-input", token)
    page.click("#dialog-submit")


@pytest.fixture
def operator(browser: Browser, served: dict[str, Any]) -> Iterator[Page]:
    """The dashboard, signed in with the operator token."""
    with open_page(browser, served["url"]) as page:
        _sign_in(page, OPERATOR)
        yield page


def test_panel_shows_success_failure_sizes_and_drill(
    operator: Page, served: dict[str, Any]
) -> None:
    """Each name has its row: site's last success (an hour ago, the newest backup), its sizes
    and its drill's RTO and RPO; reports stale (hourly, three hours old); ledger failing."""
    from playwright.sync_api import expect

    page = operator
    first, second = served["backups"]
    drill = served["drill"]
    expect(page.locator("#backups-panel")).to_be_visible(timeout=WAIT)
    expect(page.locator("#backups-count")).to_have_text("3")
    site = page.locator('#backup-rows tr[data-name="site"]')
    expect(site.locator("th.name")).to_contain_text("site")
    expect(site.locator("th.name")).to_contain_text("every 1 d 0 h")
    expect(site).to_have_attribute("data-status", "ok")
    success = site.locator("td.backup-when").first
    expect(success.locator(".age")).to_have_text(re.compile(r"^1 h 0\d m ago$"))
    expect(success.locator(".age")).to_have_attribute("title", re.compile(second.id))
    expect(success).to_contain_text(f"{second.kind} · ")
    expect(site.locator("td.backup-failure")).to_have_text(DASH)
    assert second.size > 3 * first.size  # a file added: the chart rises
    chart = site.locator("svg.size-chart")
    expect(chart.locator("title")).to_have_text(re.compile(r"^2 backups from .*, newest "))
    points = chart.locator("polyline").get_attribute("points") or ""
    (x1, y1), (x2, y2) = (map(float, point.split(",")) for point in points.split())
    assert x1 < x2
    assert y1 > y2  # higher up: larger
    expect(site.locator(".size-now")).to_have_text(f"{round(second.size / 1024)} KiB")
    expect(site.locator("td.backup-drill")).to_contain_text("passed")
    drilled = re.compile(r"^(29|30|31) m \d\d s ago$")
    expect(site.locator("td.backup-drill .age")).to_have_text(drilled)
    expect(site.locator("td.backup-rto")).to_have_text(_duration(drill.rto_seconds))
    expect(site.locator("td.backup-rpo")).to_have_text(_duration(drill.rpo_seconds))
    assert _duration(drill.rpo_seconds).startswith("30 m")

    reports = page.locator('#backup-rows tr[data-name="reports"]')
    expect(reports).to_have_attribute("data-status", "stale")
    expect(reports.locator("td.state")).to_have_text("stale")
    expect(reports.locator("td.backup-when").first).to_have_attribute("data-stale", "true")
    expect(reports.locator("td.backup-when .tag")).to_have_text("stale")
    expect(reports.locator("td.backup-drill")).to_contain_text("never")
    expect(site.locator("td.backup-when").first).to_have_attribute("data-stale", "false")

    ledger = page.locator('#backup-rows tr[data-name="ledger"]')
    expect(ledger).to_have_attribute("data-status", "failing")
    expect(ledger.locator("td.backup-failure")).to_contain_text("not a directory")
    expect(page.locator("#backups-summary")).to_have_text("1 failing · 1 stale")

    page.select_option("#backups-status", "problem")
    expect(page.locator("#backups-count")).to_have_text("2 of 3")
    expect(site).to_be_hidden()


def test_verify_and_drill_from_the_page(operator: Page, served: dict[str, Any]) -> None:
    """Verify on site's newest backup shows an ok result; a drill run from the page replaces
    the drill's RTO and RPO with the new ones (the newest data now an hour old)."""
    from playwright.sync_api import expect

    page = operator
    _, second = served["backups"]
    catalog = served["plan"].manager.catalog
    site = page.locator('#backup-rows tr[data-name="site"]')
    expect(site.locator('button[data-action="verify"]')).to_be_visible(timeout=WAIT)
    site.locator('button[data-action="verify"]').click()
    expect(page.locator("#dialog-title")).to_have_text(f"Verify backup {second.id}?")
    confirm(page)  # the operator token kept since signing in is used
    expect(page.locator(".toast").last).to_contain_text(f"Backup {second.id} verified")
    verified = site.locator(".backup-verified")
    expect(verified).to_have_text("verified")
    expect(verified.locator(".mark")).to_have_attribute("data-tone", "pass")

    before = catalog.drills("site", limit=10)
    site.locator('button[data-action="drill"]').click()
    expect(page.locator("#dialog-title")).to_have_text("Run a restore drill of “site”?")
    confirm(page, reason="monthly restore test")
    after = catalog.drills("site", limit=10)
    assert len(after) == len(before) + 1
    new = after[0]
    assert new.ok
    assert new.rpo_seconds is not None
    assert new.rto_seconds is not None
    expect(page.locator(".toast").last).to_contain_text("Drill of “site” passed")
    expect(site.locator("td.backup-rpo")).to_have_text(_duration(new.rpo_seconds), timeout=WAIT)
    assert _duration(new.rpo_seconds).startswith("1 h 00 m")
    expect(site.locator("td.backup-rto")).to_have_text(_duration(new.rto_seconds))
    drilled = site.locator("td.backup-drill .age")
    expect(drilled).to_have_attribute("data-age", repr(new.finished_at))


def _held(monkeypatch: pytest.MonkeyPatch, manager: Any, method: str) -> threading.Event:
    """Hold ``manager.<method>`` until the returned event is set (at most 5 s), and make the
    server stop waiting for it after 50 ms: the route answers 202 while the work goes on."""
    release = threading.Event()
    real = getattr(manager, method)

    def held(*args: Any, **options: Any) -> Any:
        release.wait(5)
        return real(*args, **options)

    monkeypatch.setattr(manager, method, held)
    monkeypatch.setattr(routes, "RUN_WAIT", 0.05)
    return release


def test_a_slow_drill_answers_later(
    operator: Page, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drill still running when the server stops waiting (202) shows as running, with a
    toast saying its result comes later; asked again meanwhile (409), the toast says one is
    running; its RTO and RPO show once it ends."""
    from playwright.sync_api import expect

    page = operator
    manager = served["plan"].manager
    release = _held(monkeypatch, manager, "drill")
    site = page.locator('#backup-rows tr[data-name="site"]')
    drill_button = site.locator('button[data-action="drill"]')
    try:
        expect(drill_button).to_be_visible(timeout=WAIT)
        drill_button.click()
        confirm(page)
        expect(page.locator(".toast").last).to_contain_text("takes a while")
        expect(site.locator("td.backup-drill .mark")).to_have_text("running")
        drill_button.click()
        confirm(page)
        expect(page.locator(".toast").last).to_contain_text("A drill of “site” is already running")
        expect(site.locator("td.backup-drill .mark")).to_have_text("running")
    finally:
        release.set()
    expect(site.locator("td.backup-drill .mark")).to_have_text("passed", timeout=WAIT)
    newest = manager.catalog.drills("site", limit=1)[0]
    assert newest.rpo_seconds is not None
    expect(site.locator("td.backup-rpo")).to_have_text(_duration(newest.rpo_seconds))


def test_a_slow_verification_shows_when_done(
    operator: Page, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verification still running when the server stops waiting (202) shows as running;
    the page reads the backup until the result is known, then shows it."""
    from playwright.sync_api import expect

    page = operator
    _, second = served["backups"]
    release = _held(monkeypatch, served["plan"].manager, "verify")
    site = page.locator('#backup-rows tr[data-name="site"]')
    try:
        site.locator('button[data-action="verify"]').click(timeout=WAIT)
        page.check("#backup-deep")
        confirm(page)
        expect(page.locator(".toast").last).to_contain_text(f"Verifying backup {second.id} takes")
        expect(site.locator(".backup-verified")).to_have_text("verifying")
    finally:
        release.set()
    expect(site.locator(".backup-verified")).to_have_text("verified", timeout=WAIT)
    expect(site.locator(".backup-verified")).to_have_attribute("title", re.compile("^deep "))
    expect(page.locator(".toast").last).to_contain_text("(restored into scratch)")


def test_a_viewer_sees_no_button(browser: Browser, served: dict[str, Any]) -> None:
    """With a viewer token the panel shows every row but no verify or drill button."""
    from playwright.sync_api import expect

    with open_page(browser, served["url"]) as page:
        _sign_in(page, VIEWER)
        rows = page.locator("#backup-rows tr")
        expect(rows).to_have_count(3, timeout=WAIT)
        rpo = page.locator('#backup-rows tr[data-name="site"] td.backup-rpo')
        expect(rpo).not_to_have_text(DASH)
        expect(page.locator("#backups-panel button")).to_have_count(6)  # made, but hidden
        expect(page.locator("#backups-panel button:visible")).to_have_count(0)
