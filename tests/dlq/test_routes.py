"""The DLQ over HTTP: /health/dlq, the admin API's reads and audited changes, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from buttress import Registry
from buttress.dlq import DeadLetterQueue, HealthThresholds, Operations, SQLiteBackend
from buttress.health import CONTENT_TYPE, HealthRegistry
from buttress.ops import create_app
from buttress.testing import ManualClock
from tests.ops.conftest import OP, TOKENS, VIEW, client_for

API = "/admin/reliability/dlq"


class PaymentDeclined(Exception):
    """A permanent failure (HTTP 402)."""

    status_code = 402


@pytest.fixture
def dlq(tmp_path: Any, clock: ManualClock) -> Iterator[DeadLetterQueue]:
    """A queue in a file, on the manual clock."""
    queue = DeadLetterQueue(SQLiteBackend(tmp_path / "dlq.db"), clock=clock)
    yield queue
    queue.close()


@pytest.fixture
def make_app(clock: ManualClock) -> Iterator[Callable[..., Starlette]]:
    """Build ops apps (test tokens, in-memory state, no scheduler) and close them after."""
    apps: list[Starlette] = []

    def make(registry: Registry | None = None, **options: Any) -> Starlette:
        options.setdefault("scheduler", None)
        app = create_app(
            registry if registry is not None else Registry(clock=clock),
            health=HealthRegistry(clock=clock),
            tokens=TOKENS,
            state_dir=":memory:",
            clock=clock,
            **options,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.ops.close()


@pytest.fixture
async def client(
    make_app: Callable[..., Starlette], dlq: DeadLetterQueue
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an app given the queue."""
    async with client_for(make_app(dlq=dlq)) as client:
        yield client


async def test_without_a_queue_there_are_no_routes(make_app: Callable[..., Starlette]) -> None:
    """No DLQ attached or given: the routes are neither served nor documented."""
    async with client_for(make_app()) as client:
        for method, path in (("GET", "/health/dlq"), ("GET", f"{API}/stats")):
            assert (await client.request(method, path, headers=OP)).status_code == 404
        doc = (await client.get("/admin/openapi.json", headers=VIEW)).json()
    assert not [path for path in doc["paths"] if "dlq" in path]


async def test_a_queue_attached_to_the_registry_is_served(
    make_app: Callable[..., Starlette], dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """A queue attached to the registry (kind dlq) is found without passing it."""
    registry = Registry(clock=clock)
    registry.attach("dlq", dlq, dlq.name)
    async with client_for(make_app(registry)) as client:
        answer = await client.get(f"{API}/stats", headers=VIEW)
    assert answer.status_code == 200
    assert answer.json()["name"] == "dlq"


async def test_health_grades_by_thresholds(
    client: httpx.AsyncClient, dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """Empty: pass; a parked record warns (200); an old pending record fails (503); the
    document is public health+json, cached for a few seconds."""
    empty = await client.get("/health/dlq")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == CONTENT_TYPE
    assert empty.json()["status"] == "pass"
    assert set(empty.json()["checks"]) == {
        "dlq:parked",
        "dlq:pending",
        "dlq:oldest_pending_age",
        "dlq:arrival_rate",
    }
    dlq.add({"card": "x"}, error=PaymentDeclined("declined"), queue="payments")
    assert (await client.get("/health/dlq")).json()["status"] == "pass"  # cached
    clock.advance(6)
    warned = await client.get("/health/dlq")
    assert (warned.status_code, warned.json()["status"]) == (200, "warn")
    assert warned.json()["checks"]["dlq:parked"][0]["observedValue"] == 1
    dlq.add({"n": 1}, error=ConnectionError("down"))
    clock.advance(86401 + 6)
    failed = await client.get("/health/dlq")
    assert (failed.status_code, failed.json()["status"]) == (503, "fail")
    assert "oldest_pending_age" in failed.json()["output"]


async def test_health_uses_the_attached_thresholds(
    make_app: Callable[..., Starlette], dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """Operations attached beside the queue set the thresholds: 2 parked fail here."""
    registry = Registry(clock=clock)
    registry.attach("dlq", dlq, dlq.name)
    strict = HealthThresholds(parked_warn=None, parked_fail=1)
    registry.attach("dlq_operations", Operations(health=strict), dlq.name)
    dlq.add_many([1, 2], error=PaymentDeclined("no"))
    async with client_for(make_app(registry)) as client:
        answer = await client.get("/health/dlq")
    assert (answer.status_code, answer.json()["status"]) == (503, "fail")


async def test_health_of_an_unreachable_store_fails_without_secrets(
    make_app: Callable[..., Starlette], tmp_path: Any, clock: ManualClock
) -> None:
    """A store that cannot be read makes the probe fail (503) and names no path or URL."""
    broken = DeadLetterQueue(SQLiteBackend(tmp_path / "gone.db"), clock=clock)
    broken.close()
    async with client_for(make_app(dlq=broken)) as client:
        answer = await client.get("/health/dlq")
        stats = await client.get(f"{API}/stats", headers=VIEW)
    assert (answer.status_code, answer.json()["status"]) == (503, "fail")
    assert "gone.db" not in answer.text
    assert stats.status_code == 503


async def test_reads_need_a_token_and_changes_an_operator(client: httpx.AsyncClient) -> None:
    """Reads refuse anonymous callers (401); changes refuse viewers (403)."""
    assert (await client.get(f"{API}/messages")).status_code == 401
    assert (await client.get(f"{API}/messages", headers=VIEW)).status_code == 200
    refused = await client.post(f"{API}/purge", headers=VIEW, json={"confirm": True})
    assert refused.status_code == 403


async def test_list_returns_whole_records_with_filters_and_cursor(
    client: httpx.AsyncClient, dlq: DeadLetterQueue
) -> None:
    """The listing has what a browser shows (payload, headers, error, history, times) and
    pages through a filter with its cursor."""
    ids = [
        dlq.add({"n": n}, error=ConnectionError("down"), queue="emails", headers={"to": "a"})
        for n in range(3)
    ]
    dlq.add({"n": 9}, error=PaymentDeclined("declined"), queue="payments")
    first = (await client.get(f"{API}/messages?queue=emails&limit=2", headers=VIEW)).json()
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    item = first["items"][0]
    assert item["payload"] == {"n": 2}
    assert item["headers"] == {"to": "a"}
    assert item["error"]["type"] == "ConnectionError"
    assert item["classification"] == "transient"
    assert item["history"][0]["error_type"] == "ConnectionError"
    assert {"attempts", "first_failed_at", "next_attempt_at", "status"} <= set(item)
    rest = await client.get(
        f"{API}/messages?queue=emails&limit=2&cursor={first['cursor']}", headers=VIEW
    )
    assert [i["id"] for i in rest.json()["items"]] == [ids[0]]
    assert rest.json()["cursor"] is None
    parked = (await client.get(f"{API}/messages?status=parked", headers=VIEW)).json()
    assert [i["payload"] for i in parked["items"]] == [{"n": 9}]
    bad = await client.get(f"{API}/messages?status=lost", headers=VIEW)
    assert bad.status_code == 400
    assert "status" in bad.json()["detail"]
    typo = await client.get(f"{API}/messages?queu=emails", headers=VIEW)
    assert typo.status_code == 400


async def test_get_one_and_unknown_ids(client: httpx.AsyncClient, dlq: DeadLetterQueue) -> None:
    """GET one answers the record; unknown and malformed ids are 404."""
    id = dlq.add({"x": 1}, error=ConnectionError("down"))
    assert (await client.get(f"{API}/messages/{id}", headers=VIEW)).json()["payload"] == {"x": 1}
    for missing in ("999", "abc", "9" * 40):
        answer = await client.get(f"{API}/messages/{missing}", headers=VIEW)
        assert answer.status_code == 404, missing


async def _last_audit(client: httpx.AsyncClient) -> dict[str, Any]:
    entries = (await client.get("/admin/reliability/audit", headers=VIEW)).json()["entries"]
    return dict(entries[0])


async def test_retry_is_audited_and_refused_for_resolved_records(
    client: httpx.AsyncClient, dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """Retrying a parked record makes it pending and due now, audited with before/after;
    retrying a resolved one is a 409; an unknown one a 404."""
    id = dlq.add({"card": 1}, error=PaymentDeclined("declined"))
    answer = await client.post(f"{API}/messages/{id}/retry", headers=OP, json={"reason": "fixed"})
    body = answer.json()
    assert answer.status_code == 200
    assert (body["before"]["status"], body["after"]["status"]) == ("parked", "pending")
    assert body["after"]["next_attempt_at"] == clock.time()
    audit = await _last_audit(client)
    assert (audit["action"], audit["target"], audit["reason"]) == (
        "dlq.retry",
        f"dlq/{id}",
        "fixed",
    )
    assert audit["id"] == body["audit_id"]
    dlq.handler("messages")(lambda letter: None)
    dlq.process()
    again = await client.post(f"{API}/messages/{id}/retry", headers=OP)
    assert again.status_code == 409
    assert "resolved" in again.json()["detail"]
    assert (await client.post(f"{API}/messages/12345/retry", headers=OP)).status_code == 404


async def test_edit_replaces_the_payload_and_may_retry(
    client: httpx.AsyncClient, dlq: DeadLetterQueue
) -> None:
    """Edit stores the new payload (audited with both payloads); retry: true retries too;
    a body without payload, with NaN or with an unknown field is a 400."""
    id = dlq.add({"amount": "12,50"}, error=ValueError("not a number"), queue="payments")
    answer = await client.post(
        f"{API}/messages/{id}/edit", headers=OP, json={"payload": {"amount": 12.5}, "retry": True}
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["before"]["payload"] == {"amount": "12,50"}
    assert body["after"]["payload"] == {"amount": 12.5}
    assert body["after"]["status"] == "pending"
    assert getattr(dlq.get(id), "payload", None) == {"amount": 12.5}
    audit = await _last_audit(client)
    assert audit["action"] == "dlq.edit"
    assert audit["after"]["payload"] == {"amount": 12.5}
    for content in (b"{}", b'{"payload": NaN}', b'{"payload": 1, "colour": "red"}', b"[1]"):
        bad = await client.post(f"{API}/messages/{id}/edit", headers=OP, content=content)
        assert bad.status_code == 400, content


async def test_discard_needs_a_reason(client: httpx.AsyncClient, dlq: DeadLetterQueue) -> None:
    """Discard without a reason is a 400; with one the record is discarded, the note kept."""
    id = dlq.add({"x": 1}, error=ConnectionError("down"))
    assert (await client.post(f"{API}/messages/{id}/discard", headers=OP)).status_code == 400
    blank = await client.post(f"{API}/messages/{id}/discard", headers=OP, json={"reason": " "})
    assert blank.status_code == 400
    answer = await client.post(
        f"{API}/messages/{id}/discard", headers=OP, json={"reason": "customer cancelled"}
    )
    assert answer.json()["after"]["status"] == "discarded"
    assert getattr(dlq.get(id), "note", None) == "customer cancelled"
    assert (await _last_audit(client))["action"] == "dlq.discard"


async def test_retry_many_by_filter(client: httpx.AsyncClient, dlq: DeadLetterQueue) -> None:
    """retry-many retries the pending and parked matches of a filter and says how many."""
    dlq.add_many([1, 2, 3], error=PaymentDeclined("no"), queue="payments")
    dlq.add({"other": 1}, error=PaymentDeclined("no"), queue="emails")
    answer = await client.post(
        f"{API}/retry-many", headers=OP, json={"queue": "payments", "reason": "bank is back"}
    )
    assert answer.json()["count"] == 3
    assert answer.json()["filter"] == {"queue": "payments"}
    assert dlq.stats().by_queue["emails"]["parked"] == 1
    audit = await _last_audit(client)
    assert (audit["action"], audit["after"]["count"]) == ("dlq.retry_many", 3)
    bad = await client.post(f"{API}/retry-many", headers=OP, json={"since": "yesterday"})
    assert bad.status_code == 400
    ids = await client.post(f"{API}/retry-many", headers=OP, json={"ids": ["1", "x"]})
    assert ids.status_code == 400


async def test_purge_needs_confirmation(client: httpx.AsyncClient, dlq: DeadLetterQueue) -> None:
    """Purge without confirm deletes nothing and says how many match (400); with
    ``confirm: true`` it deletes them and audits the count."""
    dlq.add_many([1, 2], error=ConnectionError("down"), queue="emails")
    dlq.add({"keep": 1}, error=ConnectionError("down"), queue="payments")
    asked = await client.post(f"{API}/purge", headers=OP, json={"queue": "emails"})
    assert asked.status_code == 400
    assert (asked.json()["error"], asked.json()["matched"]) == ("confirmation_required", 2)
    assert dlq.stats().total == 3
    done = await client.post(f"{API}/purge", headers=OP, json={"queue": "emails", "confirm": True})
    assert (done.status_code, done.json()["count"]) == (200, 2)
    assert dlq.stats().total == 1
    assert (await _last_audit(client))["action"] == "dlq.purge"


async def test_purge_confirmed_with_the_previews_ids_spares_later_records(
    client: httpx.AsyncClient, dlq: DeadLetterQueue
) -> None:
    """The preview lists the ids it counted; a confirmation sending them back deletes only
    those that still match the filter, so a record added in between survives."""
    counted = dlq.add_many([1, 2], error=ConnectionError("down"), queue="emails")
    other = dlq.add({"keep": 1}, error=ConnectionError("down"), queue="payments")
    asked = (await client.post(f"{API}/purge", headers=OP, json={"queue": "emails"})).json()
    assert (asked["matched"], asked["more"], sorted(asked["ids"])) == (2, False, sorted(counted))
    late = dlq.add({"late": 1}, error=ConnectionError("down"), queue="emails")
    body = {"queue": "emails", "ids": [*asked["ids"], other], "confirm": True}
    done = await client.post(f"{API}/purge", headers=OP, json=body)
    assert (done.status_code, done.json()["count"]) == (200, 2)
    assert [dlq.get(id) for id in counted] == [None, None]
    assert dlq.get(late) is not None  # not counted
    assert dlq.get(other) is not None  # among the ids, but not matching the filter


@pytest.mark.parametrize(
    "ids",
    ["1", ["1", 2], ["1", "x"], [str(n) for n in range(1, 1002)]],
    ids=["a-string", "a-number", "not-an-id", "too-many"],
)
async def test_purge_refuses_bad_ids(
    client: httpx.AsyncClient, dlq: DeadLetterQueue, ids: object
) -> None:
    """ids that are not a list of record id strings, or more than 1000, are a 400 naming ids."""
    dlq.add({"n": 1}, error=ConnectionError("down"), queue="emails")
    body = {"queue": "emails", "ids": ids, "confirm": True}
    refused = await client.post(f"{API}/purge", headers=OP, json=body)
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("ids ")
    assert dlq.stats().total == 1


async def test_failures_are_counted_per_bucket(
    client: httpx.AsyncClient, dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """The chart's data: failed attempts per bucket by classification and error type."""
    start = clock.time()
    dlq.add_many([1, 2], error=ConnectionError("down"), queue="emails")
    clock.advance(3600)
    dlq.add({"n": 3}, error=PaymentDeclined("no"), queue="payments")
    query = f"bucket=3600&since={start - 1}&until={clock.time() + 1}"
    body = (await client.get(f"{API}/failures?{query}", headers=VIEW)).json()
    totals = [row["total"] for row in body["buckets"]]
    assert sum(totals) == 3
    assert totals.count(0) <= len(totals) - 2
    assert body["classifications"] == ["permanent", "transient"]
    assert body["error_types"] == ["ConnectionError", "tests.dlq.test_routes.PaymentDeclined"]
    kinds = [row["by_classification"] for row in body["buckets"] if row["total"]]
    assert kinds == [{"transient": 2}, {"permanent": 1}]
    assert body["truncated"] is False
    assert body["scanned"] == 3
    only = (await client.get(f"{API}/failures?{query}&queue=emails", headers=VIEW)).json()
    assert sum(row["total"] for row in only["buckets"]) == 2
    too_many = await client.get(f"{API}/failures?bucket=1", headers=VIEW)
    assert too_many.status_code == 400


async def test_stats_has_counts_and_config(client: httpx.AsyncClient, dlq: DeadLetterQueue) -> None:
    """Stats count by status, queue, classification and error type, with the configuration."""
    dlq.add({"x": 1}, error=ConnectionError("down"), queue="emails")
    body = (await client.get(f"{API}/stats", headers=VIEW)).json()
    assert body["by_queue"]["emails"]["pending"] == 1
    assert body["by_error_type"] == {"ConnectionError": 1}
    assert body["config"]["max_attempts"] == 5
