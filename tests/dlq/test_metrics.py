"""The DLQ metrics in /metrics: message gauges from the store, counters and the processing
histogram from the queue's counters; the exposition passes promtool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from buttress import Registry
from buttress.dlq import DeadLetterQueue, SQLiteBackend
from buttress.retry import Backoff
from buttress.telemetry import ButtressCollector, render
from buttress.testing import ManualClock
from tests.telemetry._helpers import families, run_promtool, samples, value


@pytest.fixture
def dlq(tmp_path: Any, clock: ManualClock) -> Iterator[DeadLetterQueue]:
    """A queue in a file whose attempts are due a second after a failure."""
    queue = DeadLetterQueue(
        SQLiteBackend(tmp_path / "dlq.db"), backoff=Backoff.constant(1), clock=clock
    )
    yield queue
    queue.close()


def _scraped(dlq: DeadLetterQueue, clock: ManualClock) -> bytes:
    """Two emails (one resolves, one fails again) and a parked payment, then a scrape."""
    registry = Registry()
    registry.attach("dlq", dlq, dlq.name)
    dlq.add_many([{"ok": True}, {"ok": False}], error=ConnectionError("down"), queue="emails")
    dlq.add({"card": 1}, error=ValueError("bad card"), queue="payments")

    @dlq.handler("emails")
    def send(letter: Any) -> None:
        if not letter.payload["ok"]:
            raise TimeoutError("slow relay")

    clock.advance(2)
    dlq.process()
    return render(registry)


def test_messages_counters_and_histogram(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """dlq_messages counts the store by queue and status; added counts by classification;
    processed by result; the duration histogram counts each handler run."""
    found = samples(_scraped(dlq, clock))
    assert value(found, "buttress_dlq_messages", queue="emails", status="resolved") == 1
    assert value(found, "buttress_dlq_messages", queue="emails", status="pending") == 1
    assert value(found, "buttress_dlq_messages", queue="payments", status="parked") == 1
    assert value(found, "buttress_dlq_messages", queue="payments", status="pending") == 0
    assert value(found, "buttress_dlq_added_total", queue="emails", reason="transient") == 2
    assert value(found, "buttress_dlq_added_total", queue="payments", reason="permanent") == 1
    assert value(found, "buttress_dlq_processed_total", queue="emails", result="resolved") == 1
    assert value(found, "buttress_dlq_processed_total", queue="emails", result="retried") == 1
    runs = "buttress_dlq_processing_duration_seconds"
    assert value(found, f"{runs}_count", queue="emails") == 2
    assert value(found, f"{runs}_bucket", queue="emails", le="+Inf") == 2
    assert value(found, f"{runs}_sum", queue="emails") >= 0


def test_family_types_and_labels(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """Each family has the type and labels the architecture names."""
    kinds = families(_scraped(dlq, clock))
    assert kinds["buttress_dlq_messages"][0] == "gauge"
    assert kinds["buttress_dlq_added"][0] == "counter"
    assert kinds["buttress_dlq_processed"][0] == "counter"
    assert kinds["buttress_dlq_processing_duration_seconds"][0] == "histogram"
    assert kinds["buttress_dlq_messages"][1] == frozenset({"queue", "status"})


def test_exposition_passes_promtool(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """promtool check metrics accepts the exposition with the DLQ families."""
    run_promtool("check", "metrics", stdin=_scraped(dlq, clock))


def test_collector_matches_render(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """The prometheus_client collector yields the same DLQ samples as render()."""
    from prometheus_client import CollectorRegistry, generate_latest

    text = _scraped(dlq, clock)
    registry = Registry()
    registry.attach("dlq", dlq, dlq.name)
    with ButtressCollector(registry) as collector:
        generated = generate_latest(collector.register(CollectorRegistry()))
    assert samples(generated) == samples(text)


def test_an_unreadable_store_leaves_the_gauge_out(tmp_path: Any, clock: ManualClock) -> None:
    """A closed (unreadable) queue: no dlq_messages rows, and the scrape still works."""
    dlq = DeadLetterQueue(SQLiteBackend(tmp_path / "gone.db"), clock=clock)
    dlq.close()
    registry = Registry()
    registry.attach("dlq", dlq, dlq.name)
    text = render(registry)
    assert b"buttress_dlq_messages{" not in text
