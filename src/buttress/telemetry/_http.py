"""Metric families of the resilient HTTP clients (``buttress.http``), read from their snapshots.

Nothing here imports ``buttress.http`` (which needs httpx): the clients are found in the registry
by kind (``http_client``) and read through ``snapshot()``, a list of ``HostStats``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buttress.telemetry._families import Family, Items, Scrape

__all__ = ["HTTP_OUTCOMES", "http_clients"]

HTTP_OUTCOMES = (
    "success",
    "client_error",
    "throttled",
    "server_error",
    "timeout",
    "connect_error",
    "transport_error",
    "circuit_open",
    "rate_limited",
    "error",
)
"""The ``outcome`` label values, as ``buttress.http.OUTCOMES`` (a test checks they agree)."""

_STATUS = {"pass": 2, "warn": 1, "fail": 0}


def http_clients(items: Items, scrape: Scrape) -> list[Family]:
    """Per client and host: requests by outcome, attempts, retries, the latency histogram, the
    recent success ratio and the health status."""
    requests = scrape.family(
        "http_client_requests",
        "counter",
        "Requests through the resilient HTTP client by outcome: success (< 400), client_error "
        "(4xx), throttled (429), server_error (5xx), timeout, connect_error, transport_error, "
        "circuit_open, rate_limited, error.",
        "client",
        "host",
        "outcome",
    )
    attempts = scrape.family(
        "http_client_attempts",
        "counter",
        "Attempts sent by the resilient HTTP client: first attempts, retries and hedges.",
        "client",
        "host",
    )
    retries = scrape.family(
        "http_client_retries",
        "counter",
        "Retries made by the resilient HTTP client.",
        "client",
        "host",
    )
    duration = scrape.family(
        "http_client_request_duration_seconds",
        "histogram",
        "Time to the answer's headers, retries and waits included, of requests that reached "
        "the network.",
        "client",
        "host",
    )
    ratio = scrape.family(
        "http_client_success_ratio",
        "gauge",
        "Share of the host's recent requests that succeeded (answers below 500, 429 aside).",
        "client",
        "host",
    )
    status = scrape.family(
        "http_client_status",
        "gauge",
        "Health of the host from its statistics: 2 pass, 1 warn, 0 fail.",
        "client",
        "host",
    )
    for label, client in items:
        for stats in client.snapshot():
            key = (label, stats.host)
            outcomes = stats.outcomes
            for outcome in HTTP_OUTCOMES:
                requests.rows.append(((*key, outcome), outcomes.get(outcome, 0)))
            attempts.rows.append((key, stats.attempts))
            retries.rows.append((key, stats.retries))
            duration.histograms.append((key, stats.latency_buckets, stats.latency_sum))
            if stats.success_rate is not None:
                ratio.rows.append((key, stats.success_rate))
            status.rows.append((key, _STATUS.get(stats.status, 1)))
    return [requests, attempts, retries, duration, ratio, status]
