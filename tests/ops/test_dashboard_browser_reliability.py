"""The dashboard's rate limits and queues panel in headless Chromium against a real uvicorn
server (see ``browser_support``), and a breaker table that keeps a long name inside its card.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from buttress import Registry
from buttress.errors import LoadShedError
from buttress.health import HealthRegistry
from buttress.ops import create_app
from buttress.ratelimit import ConcurrencyLimiter, FixedWindow, TokenBucket, WorkQueue

from .browser_support import WAIT, launch, open_page, serving
from .conftest import TOKENS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LONG_NAME = "payments-gateway-eu-west-1-primary-connection-pool-for-the-nightly-settlement-batch"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with launch() as browser:
        yield browser


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread of its own, for a work queue's workers."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dashboard-queue", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def _limited(
    registry: Registry, loop: asyncio.AbstractEventLoop
) -> tuple[WorkQueue[str, None], threading.Event]:
    """A limiter that refused once, a keyed one, a concurrency limiter that refused once and a
    queue with a busy worker and three items waiting in two priorities (set the event to let
    the queue go)."""
    partner = registry.limiter("partner-api", TokenBucket("1/minute", burst=2))
    for _ in range(3):
        partner.allow()
    clients = registry.limiter("clients", FixedWindow(5, 60), keyed=True)
    for key in ("token-a", "token-b", "token-b"):
        clients.allow(key)
    pool = registry.add(ConcurrencyLimiter(1, name="db-pool"))

    def nested() -> None:
        try:
            pool.call(lambda: None)
        except LoadShedError:
            pass

    pool.call(nested)  # one refusal
    release = threading.Event()

    async def send(item: str) -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)

    async def fill() -> WorkQueue[str, None]:
        queue = registry.add(WorkQueue(send, priorities=2, max_size=10, name="emails"))
        queue.submit("first", priority=0)
        await asyncio.sleep(0.02)  # the worker takes it and waits for the release
        for item, priority in (("a", 1), ("b", 1), ("c", 0)):
            queue.submit(item, priority=priority)
        return queue

    return asyncio.run_coroutine_threadsafe(fill(), loop).result(timeout=5), release


@pytest.fixture(scope="module")
def limited(loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, Any]]:
    """A server whose registry has rate limiters, a concurrency limiter, a work queue and a
    breaker with a long name (reads public)."""
    registry = Registry()
    registry.breaker("db")
    registry.breaker(LONG_NAME)
    queue, release = _limited(registry, loop)
    health = HealthRegistry()
    for name in [c.name for c in health.checks()]:
        health.remove(name)
    app = create_app(
        registry, health=health, tokens=TOKENS, public_reads=True, state_dir=":memory:"
    )
    try:
        with serving(app) as url:
            yield {"url": url, "registry": registry}
    finally:
        release.set()
        asyncio.run_coroutine_threadsafe(queue.close(drain=True), loop).result(timeout=5)


@pytest.fixture
def page(browser: Browser, limited: dict[str, Any]) -> Iterator[Page]:
    """The dashboard of the app with limiters and queues."""
    with open_page(browser, limited["url"], width=1280) as page:
        yield page


def test_limits_panel_shows_limiters_and_queues(page: Page) -> None:
    """A limiter's row shows its algorithm, refusals and share, and what is left; a keyed one
    its keys; the concurrency limiter its in-flight bar; the queue its depth by priority and
    workers; the kind filter narrows the panel to one table."""
    from playwright.sync_api import expect

    partner = page.locator('#limiter-rows tr[data-name="partner-api"]')
    expect(partner.locator("td.state")).to_have_text("exhausted", timeout=WAIT)
    expect(partner).to_contain_text("token bucket · 1/min, burst 2")
    expect(partner.locator("td.num").nth(1)).to_have_text("1 · 33%")
    expect(partner).to_contain_text("0 of 2 left")
    clients = page.locator('#limiter-rows tr[data-name="clients"]')
    expect(clients).to_contain_text("fixed window · 5 per minute")
    expect(clients).to_contain_text("per key")
    assert "token-" not in page.locator("#limits-panel").inner_text()
    pool = page.locator('#concurrency-rows tr[data-name="db-pool"]')
    expect(pool).to_contain_text("0 / 1")
    expect(pool.locator("td.num").nth(1)).to_have_text("1")
    emails = page.locator('#queue-rows tr[data-name="emails"]')
    expect(emails).to_contain_text("3 / 10")
    expect(emails.locator("td.priorities")).to_have_text("p0 1 · p1 2")
    expect(emails).to_contain_text("1 / 1")  # workers busy of running
    expect(page.locator("#limits-count")).to_have_text("4")
    expect(page.locator("#limits-throttles")).to_be_hidden()  # none registered

    page.select_option("#limits-status", "queues")
    expect(page.locator("#limits-limiters")).to_be_hidden()
    expect(page.locator("#limits-count")).to_have_text("1 of 4")
    page.select_option("#limits-status", "all")
    page.fill("#limits-filter", "partner")
    expect(page.locator("#limits-count")).to_have_text("1 of 4")
    expect(page.locator("#limits-queues")).to_be_hidden()


def test_a_long_breaker_name_stays_inside_the_card(page: Page) -> None:
    """A long breaker name is cut with an ellipsis (whole in its title) and the table stays
    inside its card, its Open button whole and clickable."""
    from playwright.sync_api import expect

    row = page.locator(f'#breaker-rows tr[data-name="{LONG_NAME}"]')
    expect(row).to_be_visible(timeout=WAIT)
    name = row.locator("th.name")
    expect(name).to_have_attribute("title", LONG_NAME)
    assert name.evaluate("(node) => node.scrollWidth > node.clientWidth")  # cut, not wrapped
    card = page.locator("section.breakers").bounding_box()
    button = row.locator('button[data-action="open"]')
    box = button.bounding_box()
    assert card is not None
    assert box is not None
    assert card["x"] <= box["x"]
    assert box["x"] + box["width"] <= card["x"] + card["width"]
    button.click()  # not covered by anything: the dialog opens
    expect(page.locator("#dialog-title")).to_contain_text("Open breaker")
