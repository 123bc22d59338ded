"""Helpers of the dashboard's browser tests: Debian's Chromium driven by Playwright's Python
package, an ops app served by uvicorn in a thread, a fresh page on it, and the action dialog.

Where Chromium or Playwright is missing the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette

from tests.servers import ops_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["WAIT", "confirm", "launch", "open_page", "serving"]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT = 5000  # ms, for anything the live stream or a panel's next read brings


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true (CI installs Chromium: these tests must run there)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def launch() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched by Playwright (a test module's browser fixture)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (the Python package) is not installed")
    if shutil.which(CHROMIUM) is None:
        _unavailable(f"{CHROMIUM} is missing (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free port of 127.0.0.1; its URL."""
    app.state.ops.extra["dashboard"].interval = 0.25  # quicker pushes keep the tests short
    with ops_server(app, "ops-dashboard-browser") as url:
        yield f"{url}/"


@contextmanager
def open_page(browser: Browser, url: str, width: int = 1440) -> Iterator[Page]:
    """A fresh browser context (empty session storage) on ``url``; page errors fail."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    yield page
    context.close()
    assert errors == []


def confirm(
    page: Page, token: str | None = None, reason: str | None = None, *, closes: bool = True
) -> None:
    """Fill the action dialog (the token if it asks for one), submit it, and unless another
    step follows (``closes=False``), wait until it closes."""
    from playwright.sync_api import expect

    expect(page.locator("#token-dialog")).to_be_visible(timeout=WAIT)
    if token is not None:
        page.fill("#token-input", token)
    else:
        expect(page.locator("#token-field")).to_be_hidden()
    if reason is not None:
        page.fill("#reason-input", reason)
    page.click("#dialog-submit")
    if closes:
        expect(page.locator("#token-dialog")).to_be_hidden(timeout=WAIT)
