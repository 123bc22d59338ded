"""The dashboard in headless Chromium (Debian's, driven by Playwright's Python package) against a
real uvicorn server: tokens, live state changes, a reset through the dialog, 50 breakers; and,
against a second server, the panels of optional capabilities (degradation, feature flags, dead
letters, HTTP clients), which an app without them never shows.

Where Chromium or Playwright is missing the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from buttress import Registry
from buttress.degrade import BreakerRule, DegradationManager, Flag, FlagRule, FlagStore, Variant
from buttress.dlq import DeadLetterQueue
from buttress.health import HealthRegistry
from buttress.http import Client, HostPolicy
from buttress.ops import create_app

from .browser_support import WAIT, confirm, launch, open_page, serving
from .conftest import OPERATOR, TOKENS, VIEWER

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREENSHOT = "/tmp/buttress-dashboard.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with launch() as browser:
        yield browser


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
    with serving(app) as url:
        yield {"url": url, "registry": registry}


@pytest.fixture
def page(browser: Browser, served: dict[str, Any]) -> Iterator[Page]:
    """The dashboard of the app without optional capabilities, reads needing a token."""
    with open_page(browser, served["url"]) as page:
        yield page


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


# -- the panels of optional capabilities ------------------------------------------------------


def _partner(request: httpx.Request) -> httpx.Response:
    """A mock upstream: hosts named flaky answer 500, the others 200."""
    return httpx.Response(500 if request.url.host.startswith("flaky") else 200, text="ok")


@pytest.fixture(scope="module")
def capable() -> Iterator[dict[str, Any]]:
    """A second server whose app has a degradation manager, a flag store, a dead letter queue
    and an HTTP client (reads public, changes needing the operator token)."""
    registry = Registry()
    registry.breaker("payments", minimum_calls=2, window=10)
    manager = DegradationManager(
        [BreakerRule("payments", "moderate")],
        features={"recommendations": "moderate", "search": "critical"},
        registry=registry,
    )
    flags = FlagStore("memory://", sync_interval=None)
    flags.create(Flag("checkout-v2", description="The new checkout flow", rollout=30))
    pricing = Flag(
        "new-pricing",
        enabled=True,
        variants=[Variant("control", 3), Variant("treatment", 1)],
        rules=[FlagRule("tenant", "in", ["acme", "globex"], variant="treatment")],
    )
    flags.create(pricing)
    registry.attach("flags", flags, "default")
    client = Client(
        transport=httpx.MockTransport(_partner),
        registry=registry,
        name="partners",
        policies=HostPolicy(attempts=1, minimum_calls=4, window=4),
    )
    for host in ("api.partner.test", "flaky.partner.test"):
        for _ in range(6):
            try:
                client.get(f"https://{host}/")
            except Exception:  # the flaky host's breaker opens: the rest are rejected
                pass
    dlq = DeadLetterQueue("sqlite:///:memory:")
    dlq.add({"to": "ann@example.com"}, error=ConnectionError("smtp down"), queue="emails")
    dlq.add({"order": 7}, error=ValueError("bad total"), queue="orders")
    dlq.add({"order": 8}, error=ValueError("bad total"), queue="orders")
    health = HealthRegistry()
    for name in [c.name for c in health.checks()]:
        health.remove(name)
    app = create_app(
        registry, health=health, tokens=TOKENS, public_reads=True, state_dir=":memory:", dlq=dlq
    )
    try:
        with serving(app) as url:
            yield {"url": url, "manager": manager, "flags": flags, "dlq": dlq}
    finally:
        client.close()
        flags.close()
        manager.close()
        dlq.close()


@pytest.fixture
def panels(browser: Browser, capable: dict[str, Any]) -> Iterator[Page]:
    """The dashboard of the app with every capability (no token kept yet)."""
    with open_page(browser, capable["url"]) as page:
        yield page


def test_unconfigured_capabilities_stay_hidden(page: Page) -> None:
    """An app without degradation, flags, a DLQ or a backup plan (404), HTTP clients or
    limiters (none) shows no such panel."""
    from playwright.sync_api import expect

    paths = ("/degradation", "/flags", "/dlq/stats", "/http-clients", "/limits", "/backups")
    with (
        page.expect_response(lambda r: r.url.endswith(paths[0])) as degradation,
        page.expect_response(lambda r: r.url.endswith(paths[1])) as flags,
        page.expect_response(lambda r: r.url.endswith(paths[2])) as dlq,
        page.expect_response(lambda r: r.url.endswith(paths[3])) as http,
        page.expect_response(lambda r: r.url.endswith(paths[4])) as limits,
        page.expect_response(lambda r: paths[5] in r.url) as backups,
    ):
        _sign_in(page, VIEWER)
    assert [r.value.status for r in (degradation, flags, dlq, backups)] == [404] * 4
    assert http.value.json() == {"clients": []}
    assert not any(limits.value.json().values())  # four empty lists
    expect(page.locator("#breaker-rows tr")).to_have_count(50, timeout=WAIT)
    for panel in ("degradation", "flags", "dlq", "http", "limits", "backups"):
        expect(page.locator(f"#{panel}-panel")).to_be_hidden()


def test_degradation_level_set_and_cleared(panels: Page, capable: dict[str, Any]) -> None:
    """The level shows; set-level asks for the token and the new level, override and features
    show at once; clearing the override brings the computed level back."""
    from playwright.sync_api import expect

    level = panels.locator("#degradation-level")
    expect(level).to_have_text("normal", timeout=WAIT)
    feature = panels.locator('#degradation-features li[data-name="recommendations"]')
    expect(feature).to_have_attribute("data-state", "on")
    expect(panels.locator("#degradation-set")).to_be_visible()
    expect(panels.locator("#degradation-clear")).to_be_hidden()

    panels.click("#degradation-set")
    expect(panels.locator("#token-field")).to_be_visible()  # no token kept: it asks
    panels.select_option("#level-select", "severe")
    panels.select_option("#expiry-select", "900")
    confirm(panels, OPERATOR, reason="database failover")
    expect(level).to_have_text("severe", timeout=WAIT)
    expect(panels.locator("#degradation-override")).to_contain_text("by alice")
    expect(panels.locator("#degradation-reason")).to_contain_text("database failover")
    expect(feature).to_have_attribute("data-state", "off", timeout=WAIT)
    expect(panels.locator("#degradation-changes li").first).to_contain_text("normal → severe")
    expect(panels.locator("#degradation-timeline .timeline-area.level-severe")).to_have_count(1)
    assert capable["manager"].level.label == "severe"

    panels.click("#degradation-clear")
    confirm(panels)  # the operator token is kept now
    expect(level).to_have_text("normal", timeout=WAIT)
    expect(panels.locator("#degradation-override")).to_be_hidden()
    assert capable["manager"].override is None


def test_flag_toggle_rollout_and_kill(panels: Page, capable: dict[str, Any]) -> None:
    """A flag's switch, rollout slider and kill switch change it, on screen and in the store."""
    from playwright.sync_api import expect

    row = panels.locator('#flag-rows tr[data-name="checkout-v2"]')
    switch = row.locator("button.switch")
    expect(switch).to_have_attribute("aria-checked", "false", timeout=WAIT)
    expect(row.locator("td.state")).to_have_text("off")
    expect(panels.locator('#flag-rows tr[data-name="new-pricing"]')).to_contain_text(
        "control 75% · treatment 25%"
    )

    switch.click()
    confirm(panels, OPERATOR)
    expect(switch).to_have_attribute("aria-checked", "true", timeout=WAIT)
    expect(row.locator("td.state")).to_have_text("partial")  # on for 30%
    assert capable["flags"].get("checkout-v2").enabled

    row.locator("input.rollout").evaluate(
        "(node) => { node.value = '60'; node.dispatchEvent(new Event('input'));"
        " node.dispatchEvent(new Event('change')); }"
    )
    confirm(panels)
    expect(row.locator("output.rollout-value")).to_have_text("60%", timeout=WAIT)
    assert capable["flags"].get("checkout-v2").rollout == 60

    row.locator('button[data-action="kill"]').click()
    confirm(panels)
    expect(row.locator("td.state")).to_have_text("killed", timeout=WAIT)
    expect(switch).to_be_disabled()
    assert capable["flags"].get("checkout-v2").killed


def test_http_panel_shows_each_host(panels: Page) -> None:
    """Each host of the HTTP client has a row: requests, success rate, breaker and status."""
    from playwright.sync_api import expect

    api = panels.locator('#http-rows tr[data-name="partners api.partner.test"]')
    expect(api.locator("td.state").first).to_have_text("pass", timeout=WAIT)
    expect(api).to_contain_text("100%")
    cells = api.locator("td.num")
    expect(cells.first).to_have_text("6")
    flaky = panels.locator('#http-rows tr[data-name="partners flaky.partner.test"]')
    expect(flaky.locator("td.state").first).to_have_text("fail")
    expect(flaky.locator("td.state").last).to_have_text("open")
    expect(flaky).to_contain_text("circuit breaker open")
    panels.select_option("#http-status", "problem")
    expect(panels.locator("#http-rows tr:visible")).to_have_count(1)
    expect(panels.locator("#http-count")).to_have_text("1 of 2")


def test_dead_letters_browse_discard_and_purge(panels: Page, capable: dict[str, Any]) -> None:
    """The DLQ panel lists the records; one opens with its payload and error; discarding it
    asks for a reason; purging what a filter matches shows the count and asks again, then
    deletes only what it counted (a record matching since then stays)."""
    from playwright.sync_api import expect

    rows = panels.locator("#dlq-rows tr")
    expect(rows).to_have_count(3, timeout=WAIT)
    expect(panels.locator("#dlq-counts")).to_contain_text("parked2")
    panels.select_option("#dlq-queue", "orders")
    expect(rows).to_have_count(2, timeout=WAIT)
    first = rows.first
    first_id = first.get_attribute("data-name")
    first.locator("button.link").click()
    detail = panels.locator("#dlq-detail")
    expect(detail).to_contain_text(f"Dead letter {first_id}")
    expect(detail.locator("pre.payload").first).to_contain_text('"order"')
    expect(detail).to_contain_text("ValueError: bad total")

    detail.locator('button[data-action="discard"]').click()
    expect(panels.locator("#reason-input")).to_have_attribute("required", "")
    confirm(panels, OPERATOR, reason="duplicate order")
    expect(first.locator("td.state")).to_have_text("discarded", timeout=WAIT)
    assert capable["dlq"].get(first_id).status.value == "discarded"

    panels.select_option("#dlq-status", "discarded")
    expect(rows).to_have_count(1, timeout=WAIT)
    panels.click("#dlq-purge")
    confirm(panels, closes=False)  # the first step counts what matches
    expect(panels.locator("#dialog-title")).to_have_text(
        "Purge 1 dead letter for good?", timeout=WAIT
    )
    expect(panels.locator("#token-dialog")).to_contain_text("only these are deleted")
    dlq = capable["dlq"]
    late = dlq.add({"order": 9}, error=ValueError("bad total"), queue="orders")
    dlq.discard(late, "arrived after the count")
    confirm(panels)
    expect(panels.locator(f'#dlq-rows tr[data-name="{first_id}"]')).to_have_count(0, timeout=WAIT)
    expect(panels.locator(f'#dlq-rows tr[data-name="{late}"]')).to_have_count(1, timeout=WAIT)
    assert dlq.get(first_id) is None
    assert dlq.get(late) is not None
