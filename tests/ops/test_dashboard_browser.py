"""The dashboard in headless Chromium (Debian's, driven by Playwright's Python package) against a
real uvicorn server: tokens, live state changes, a reset through the dialog, 50 breakers.

Where Chromium or Playwright is missing the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from buttress import Registry
from buttress.health import HealthRegistry
from buttress.ops import create_app, make_server

from .conftest import OPERATOR, TOKENS, VIEWER

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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
SCREENSHOT = "/tmp/buttress-dashboard.png"
WAIT = 5000  # ms, for anything the live stream brings


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true (CI installs Chromium: these tests must run there)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (the Python package) is not installed")
    if shutil.which(CHROMIUM) is None:
        _unavailable(f"{CHROMIUM} is missing (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _registry() -> Registry:
    """db, payments and 48 more breakers (some failing), two pipelines."""
    registry = Registry()
    registry.breaker("db", minimum_calls=2, window=10)
    registry.breaker("payments", minimum_calls=2, window=10)
    services = ["auth", "billing", "catalog", "email", "inventory", "ledger", "orders", "search"]
    for i in range(48):
        breaker = registry.breaker(f"{services[i % 8]}-{i // 8 + 1}", minimum_calls=4, window=20)
        for call in range(12 + i):
            failing = (i % 7 == 3 and call % 2 == 0) or call % (9 + i % 5) == 0
            try:
                breaker.call(_fail if failing else _succeed)
            except (ValueError, Exception):
                pass
    registry.pipeline("checkout", registry.timeout("checkout-timeout", 2.0), "payments")
    registry.pipeline("reports", registry.timeout("reports-timeout", 10.0), "db")
    return registry


def _fail() -> None:
    raise ValueError("upstream failed")


def _succeed() -> int:
    return 1


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    """uvicorn in a thread on 127.0.0.1 serving an ops app whose reads need a token."""
    registry = _registry()
    health = HealthRegistry()
    for name in [c.name for c in health.checks()]:
        health.remove(name)

    @health.check(component_type="datastore")
    async def database() -> dict[str, Any]:
        return {"status": "pass", "observed_value": 3.5, "observed_unit": "ms"}

    @health.check(component_type="component", critical=False)
    async def mailer() -> dict[str, Any]:
        return {"status": "warn", "message": "queue is backing up"}

    app = create_app(registry, health=health, tokens=TOKENS, state_dir=":memory:")
    app.state.ops.extra["dashboard"].interval = 0.25  # quicker pushes keep the test short
    server = make_server(app, port=0, log_level="warning")
    thread = threading.Thread(target=server.run, name="ops-dashboard-browser", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "registry": registry}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def page(browser: Browser, served: dict[str, Any]) -> Iterator[Page]:
    """A fresh browser context (empty session storage) on the dashboard; page errors fail."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(served["url"])
    yield page
    context.close()
    assert errors == []


def _sign_in(page: Page, token: str) -> None:
    from playwright.sync_api import expect

    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    expect(page.locator("#dialog-title")).to_have_text("Sign in to view")
    page.fill("#token-input", token)
    page.click("#dialog-submit")


def test_live_state_and_reset_with_an_operator_token(page: Page, served: dict[str, Any]) -> None:
    """Live trip shows on screen; reset refuses the viewer token, then works with the operator's."""
    from playwright.sync_api import expect

    _sign_in(page, VIEWER)
    state = page.locator('#breaker-rows tr[data-name="db"] td.state')
    expect(state).to_have_text("closed", timeout=WAIT)
    expect(page.locator("#connection")).to_have_text("live")

    served["registry"].get("db", "breaker").trip()
    expect(state).to_have_text("forced open", timeout=WAIT)
    expect(page.locator("#events li").first).to_contain_text("db", timeout=WAIT)

    page.click('#breaker-rows tr[data-name="db"] button[data-action="reset"]')
    expect(page.locator("#token-field")).to_be_hidden()  # the viewer token is tried first
    page.fill("#reason-input", "dependency recovered")
    page.click("#dialog-submit")
    expect(page.locator("#dialog-error")).to_contain_text("needs an operator token")
    page.fill("#token-input", OPERATOR)
    page.click("#dialog-submit")
    expect(page.locator("#token-dialog")).to_be_hidden(timeout=WAIT)
    expect(state).to_have_text("closed", timeout=WAIT)
    assert served["registry"].get("db", "breaker").state.value == "closed"

    assert page.evaluate("sessionStorage.getItem('buttress.token')") == OPERATOR
    assert page.evaluate("localStorage.length") == 0
    assert OPERATOR not in page.url
    assert VIEWER not in page.url


def test_a_wrong_token_is_refused_clearly(page: Page) -> None:
    """A token the server does not know is refused in the dialog, without showing data."""
    from playwright.sync_api import expect

    _sign_in(page, "not-a-real-token")
    expect(page.locator("#dialog-error")).to_have_text(
        "This token is not valid. Enter a valid token.", timeout=WAIT
    )
    expect(page.locator("#connection")).to_have_text("needs a token")
    expect(page.locator("#breaker-rows tr")).to_have_count(0)


def test_fifty_breakers_stay_readable(page: Page) -> None:
    """50 breakers render with filters by name and state; a full-page screenshot is kept."""
    from playwright.sync_api import expect

    _sign_in(page, VIEWER)
    rows = page.locator("#breaker-rows tr")
    expect(rows).to_have_count(50, timeout=WAIT)
    expect(page.locator("#jobs-table")).to_be_visible(timeout=WAIT)
    expect(page.locator("#pipelines li.pipeline")).to_have_count(2)
    expect(page.locator("#checks li")).to_have_count(2, timeout=WAIT)

    page.fill("#breaker-filter", "orders")
    expect(page.locator("#breaker-rows tr:visible")).to_have_count(6)
    expect(page.locator("#breaker-count")).to_have_text("6 of 50")
    page.fill("#breaker-filter", "")
    page.select_option("#breaker-state", "problem")
    not_closed = page.locator("#breaker-rows tr:visible")
    expect(not_closed.first).to_be_visible()
    for text in not_closed.locator("td.state").all_inner_texts():
        assert text.strip() not in ("closed", "disabled")
    page.select_option("#breaker-state", "all")
    expect(page.locator("#breaker-rows tr:visible")).to_have_count(50)

    # A few chart samples (one a second); polled, as the page's CSP forbids wait_for_function.
    drawn = "[...document.querySelectorAll('#breaker-rows polyline')].map(l => l.points.length)"
    deadline = time.monotonic() + WAIT / 1000
    while min(page.evaluate(drawn)) < 3:
        assert time.monotonic() < deadline, "the charts were not drawn"
        page.wait_for_timeout(50)
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert os.path.getsize(SCREENSHOT) > 50_000


def test_stream_parser_handles_any_chunking(page: Page) -> None:
    """The page's SSE parser gives the same events however the bytes are split into chunks."""
    script = """async () => {
        const { EventStreamParser } = await import("./dashboard/stream.js");
        const text = ": hi\\r\\nevent: a\\r\\nid: 7\\r\\ndata: x\\r\\ndata: y\\r\\n\\r\\n" +
            "retry: 900\\ndata: {\\"k\\": 1}\\n\\n:keep-alive\\n\\nevent: b\\rdata:z\\r\\r";
        const runs = [];
        for (const size of [1, 2, 3, 5, 1000]) {
            const seen = [];
            const parser = new EventStreamParser((ev) => seen.push(ev));
            for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
            runs.push(JSON.stringify({ seen, retry: parser.retry }));
        }
        return runs;
    }"""
    runs = page.evaluate(script)
    assert len(set(runs)) == 1
    result = json.loads(runs[0])
    assert result["retry"] == 900
    assert result["seen"] == [
        {"event": "a", "data": "x\ny", "id": "7"},
        {"event": "message", "data": '{"k": 1}', "id": "7"},
        {"event": "b", "data": "z", "id": "7"},
    ]
