"""Checks of the service's own parts: its circuit breakers, and custom callables."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Unpack

from buttress.breaker import BreakerState
from buttress.errors import ConfigError
from buttress.health._model import Check, CheckFunction, CheckResult, Status, grade, to_result
from buttress.health.checks._common import CheckOptions, common, over, scrub, thresholds, worst

if TYPE_CHECKING:
    from buttress.registry import Registry

__all__ = ["breakers_check", "custom_check"]

TRIPPED = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN, BreakerState.HALF_OPEN})
"""Breaker states that make the breakers check warn."""


def breakers_check(
    registry: Registry, name: str = "circuit_breakers", **options: Unpack[CheckOptions]
) -> Check:
    """Every circuit breaker of ``registry``: any open, forced-open or half-open one gives
    **warn**, never fail, so that one broken dependency does not take the whole fleet out of
    the load balancer; so does a shared breaker in local mode (its store unreachable), with
    the reason (secrets masked). Observed value: the number of open, forced-open or half-open
    breakers. Details: per breaker its state, failure rate, slow-call rate, seconds until a
    trial, openings, and ``degraded`` (with ``degraded_reason`` when true). Defaults:
    component_type "component", measurement "open".
    """
    base = common(name, options, component_type="component", measurement="open")
    if not callable(getattr(registry, "breakers", None)):
        raise ConfigError("registry", type(registry).__name__, "must be a buttress.Registry")

    async def breaker_states() -> CheckResult:
        """Snapshot every breaker and warn about those not closed."""
        try:
            breakers = registry.breakers()
            snapshots = [breaker.snapshot() for breaker in breakers]
        except Exception as exc:  # this check warns at worst, whatever happens
            return CheckResult.warned(f"cannot read circuit breakers: {scrub(str(exc))}")
        states: dict[str, dict[str, Any]] = {}
        local: list[str] = []
        for breaker, snap in zip(breakers, snapshots, strict=True):
            states[snap.name] = {
                "state": snap.state.value,
                "failure_rate": round(snap.failure_rate, 4),
                "slow_rate": round(snap.slow_rate, 4),
                "retry_after": snap.retry_after,
                "openings": snap.openings,
                "degraded": snap.degraded,
            }
            if snap.degraded:
                why = scrub(str(getattr(breaker, "degraded_reason", None) or "store unreachable"))
                states[snap.name]["degraded_reason"] = why
                local.append(f"{snap.name} ({why})")
        tripped = [f"{s.name} ({s.state.value})" for s in snapshots if s.state in TRIPPED]
        details = {"breakers": states}
        parts = []
        if tripped:
            parts.append(f"{len(tripped)} of {len(snapshots)} circuit breakers open: ")
            parts[-1] += ", ".join(tripped)
        if local:
            parts.append(f"{len(local)} in local mode, store unreachable: " + ", ".join(local))
        if parts:
            output = scrub("; ".join(parts))
            return CheckResult(Status.WARN, output, len(tripped), "breakers", details)
        output = f"{len(snapshots)} circuit breakers, none open"
        return CheckResult(Status.PASS, output, 0, "breakers", details)

    return base.check(breaker_states)


def custom_check(
    name: str,
    fn: Callable[[], Any],
    *,
    warn_above: float | None = None,
    fail_above: float | None = None,
    **options: Unpack[CheckOptions],
) -> Check:
    """Your own sync or async callable as a check. It may return a bool, a status word
    (``"healthy"``, ``"degraded"``, ``"down"``...), a ``Status``, a dict like
    ``{"status": "healthy", "value": 1, "unit": "ms", "message": "..."}``, a ``CheckResult``, or
    None (pass); ``to_result`` normalises it. ``warn_above``/``fail_above`` (default none) grade a
    numeric observed value too (the worse status wins). An exception propagates, and the registry
    reports it as a failure. Defaults: component_type "component", measurement "status".
    """
    base = common(name, options, component_type="component", measurement="status")
    warn, fail = thresholds(warn_above, fail_above)
    if not callable(fn):
        raise ConfigError("fn", fn, "must be a callable with no arguments")

    def judge(value: object) -> CheckResult:
        result = to_result(value)
        observed = result.observed_value
        if (warn is None and fail is None) or not isinstance(observed, int | float):
            return result
        status = grade(observed, warn_above=warn, fail_above=fail)
        if status.severity <= result.status.severity:
            return result
        unit = result.observed_unit or ""
        output = (result.output or f"observed {observed:g}") + over(status, warn, fail, unit)
        return dataclasses.replace(result, status=worst(result.status, status), output=output)

    wrapped: CheckFunction
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - a callable object's async __call__
    ):

        async def run_async() -> CheckResult:
            """Await the callable and normalise what it returned."""
            return judge(await fn())

        wrapped = run_async
    else:

        def run_sync() -> CheckResult:
            """Call the callable and normalise what it returned."""
            value = fn()
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError(f"custom check {name!r} returned an awaitable: make it async def")
            return judge(value)

        wrapped = run_sync
    return base.check(wrapped)
