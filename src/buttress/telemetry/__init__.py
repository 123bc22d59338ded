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
    buttress_degradation_level                              gauge    0 normal .. 5 maintenance
    buttress_degradation_changes_total                      counter
    buttress_degradation_feature_enabled{feature}           gauge    1 on, 0 off
    buttress_http_client_requests_total{client,host,outcome} counter outcome: buttress.http.OUTCOMES
    buttress_http_client_attempts_total{client,host}        counter  first attempts, retries, hedges
    buttress_http_client_retries_total{client,host}         counter
    buttress_http_client_request_duration_seconds{client,host} histogram  to the answer's headers
    buttress_http_client_success_ratio{client,host}         gauge    over the recent window
    buttress_http_client_status{client,host}                gauge    2 pass, 1 warn, 0 fail
    buttress_dlq_messages{queue,status}                     gauge    records in the store
    buttress_dlq_added_total{queue,reason}                  counter  reason: the classification
    buttress_dlq_processed_total{queue,result}              counter  resolved|retried|parked|stale
    buttress_dlq_processing_duration_seconds{queue}         histogram  handler run time
    buttress_ratelimit_decisions_total{name,result}         counter  allowed|refused
    buttress_ratelimit_keys{name}, _waiting{name}, _limit{name} gauge keys held, waiters, quota
    buttress_concurrency_in_flight{name}, _limit{name}      gauge    concurrency limiters
    buttress_throttle_rejection_probability{name}           gauge    adaptive throttles
    buttress_work_queue_depth{name}, _max_size{name}        gauge    items waiting, capacity
    buttress_work_queue_oldest_age_seconds{name}            gauge    0 when empty
    buttress_work_queue_workers{name}, _busy_workers{name}  gauge
    buttress_work_queue_items_total{name,outcome}           counter  processed|failed|expired|
                                                                     refused|evicted
    buttress_load_shed_total{name}                          counter  concurrency, throttle, queue
    buttress_load_shedding{name}                            gauge    1 while shedding
    buttress_backup_last_success_timestamp_seconds{name}     gauge    newest completed backup's end
    buttress_backup_duration_seconds{name}                  gauge    how long it took
    buttress_backup_size_bytes{name}                        gauge    bytes it stored
    buttress_drill_recovery_seconds{name}                   gauge    newest passed drill's RTO
    buttress_drill_recovery_point_seconds{name}             gauge    ... and RPO (data age)
    buttress_drill_last_success_timestamp_seconds{name}     gauge    ... and its end (Unix time)
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
