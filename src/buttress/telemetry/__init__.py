"""Telemetry: the policies of a ``Registry`` as Prometheus metrics, read at scrape time.

``render(registry, health=None)`` gives the text exposition for a ``/metrics`` endpoint (serve
it as ``CONTENT_TYPE``); ``ButtressCollector`` is the same as a ``prometheus_client`` custom
collector, registered only when asked (``collector.register(CollectorRegistry())``). Only
``collect()`` and ``register()`` need ``prometheus_client`` (the ``metrics`` extra).

Metrics (``name`` is the policy's name, redacted; counters count since the policy was created,
transitions since the collector was)::

    buttress_circuit_breaker_calls_total{name,outcome}      counter  outcome: success, failure,
                                                                     ignored, rejected
    buttress_circuit_breaker_slow_calls_total{name}         counter  also counted in calls_total
    buttress_circuit_breaker_state{name,state}              gauge    1 current, 0 other states:
                                                 closed|open|half_open|forced_open|disabled
    buttress_circuit_breaker_failure_ratio{name}            gauge    failed share of the window
    buttress_circuit_breaker_transitions_total{name,from,to} counter
    buttress_retry_calls_total{name}                        counter  finished calls
    buttress_retry_attempts_total{name}                     counter  first attempts + retries
    buttress_retry_exhausted_total{name}                    counter  calls that gave up
    buttress_retry_budget_available{name}                   gauge    retries still allowed
    buttress_bulkhead_rejected_total{name}                  counter
    buttress_bulkhead_active{name}, _queued{name}           gauge    calls running, waiting
    buttress_bulkhead_max_concurrent{name}, _max_queued{name} gauge  the limits
    buttress_timeout_expired_total{name}                    counter
    buttress_fallback_used_total{name}                      counter
    buttress_hedge_launched_total{name}, _won_total{name}   counter
    buttress_chaos_injected_total{name,type}                counter  fault|latency
    buttress_chaos_enabled{name}                            gauge    1 or 0
    buttress_health_check_status{check}                     gauge    2 pass, 1 warn/not run, 0 fail
    buttress_health_check_duration_seconds{check}           gauge    last run
    buttress_health_check_last_run_timestamp_seconds{check} gauge    last run (Unix time)
    buttress_health_check_info{check,component_type,critical,liveness,readiness,startup}
                                                            gauge    always 1; "true"/"false"

A family without rows (no policy of that kind) is left out of the exposition.
"""

from buttress.telemetry._exposition import CONTENT_TYPE
from buttress.telemetry._prometheus import ButtressCollector, HealthSource, render

__all__ = ["CONTENT_TYPE", "ButtressCollector", "HealthSource", "render"]
