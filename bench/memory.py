"""Memory held by one breaker, with tracemalloc: after construction and after a full window.

Each breaker is first built and exercised once unmeasured (so that imports, caches and interned
strings are not counted), then measured: traced bytes held after construction, and after 100
calls through it, every third one failing (34 failures: no breaker here opens on that), each
after a full garbage collection. The peers have no count window; their numbers are context.
purgatory's breaker comes with the factory, unit of work and message bus it needs.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MEMORY", "SCENARIOS", "MemoryScenario"]

CALLS = 100
LIMIT = 2048


class Boom(Exception):
    """The failure recorded by the breakers."""


def _outcome(i: int) -> Callable[[], int]:
    if i % 3 == 0:
        return _fail
    return _ok


def _ok() -> int:
    return 1


def _fail() -> int:
    raise Boom


@dataclass(frozen=True)
class MemoryContender:
    """How to build one breaker, send one call through it, and read its state."""

    label: str
    library: str
    form: str
    build: Callable[[], Any]
    call: Callable[[Any, Callable[[], int]], Any]
    state: Callable[[Any], str]


@dataclass(frozen=True)
class MemoryScenario:
    """Bytes held by each contender's breaker; buttress's must stay within ``limit``."""

    name: str
    title: str
    contenders: tuple[MemoryContender, ...]
    subject: str
    limit: int
    notes: tuple[str, ...] = ()
    kind: str = field(default="memory", init=False)


def _exercise(c: MemoryContender, obj: Any) -> None:
    call = c.call
    for i in range(CALLS):
        try:
            call(obj, _outcome(i))
        except Boom:
            pass


def _held(base: int) -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - base


def _measure_once(c: MemoryContender) -> tuple[int, int, str]:
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    obj = c.build()
    built = _held(base)
    _exercise(c, obj)
    filled = _held(base)
    state = c.state(obj)
    del obj
    return built, filled, state


def run_memory(scenario: MemoryScenario, repeats: int) -> dict[str, Any]:
    """Measure every contender ``repeats`` times (medians reported) and judge the subject."""
    started = time.perf_counter()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    results: dict[str, dict[str, Any]] = {}
    try:
        for c in scenario.contenders:
            entry: dict[str, Any] = {"library": c.library, "form": c.form}
            results[c.label] = entry
            try:
                warm = c.build()
                _exercise(c, warm)
                del warm
                runs = [_measure_once(c) for _ in range(repeats)]
            except ImportError as exc:
                entry.update(status="unavailable", reason=f"{type(exc).__name__}: {exc}")
                continue
            except Exception as exc:
                entry.update(status="error", reason=f"{type(exc).__name__}: {exc}")
                continue
            entry.update(
                status="ok",
                constructed=[r[0] for r in runs],
                filled=[r[1] for r in runs],
                constructed_median=statistics.median(r[0] for r in runs),
                filled_median=statistics.median(r[1] for r in runs),
                state_after=runs[-1][2],
            )
    finally:
        if not was_tracing:
            tracemalloc.stop()
    subject = results.get(scenario.subject, {})
    targets = []
    for phase in ("constructed", "filled"):
        value = subject.get(f"{phase}_median") if subject.get("status") == "ok" else None
        status = "N/A" if value is None else ("PASS" if value <= scenario.limit else "MISS")
        targets.append(
            {
                "subject": f"{scenario.subject} ({phase})",
                "peer": None,
                "kind": "absolute_bytes",
                "limit": scenario.limit,
                "value": value,
                "status": status,
            }
        )
    return {
        "kind": "memory",
        "title": scenario.title,
        "unit": "bytes",
        "repeats": repeats,
        "notes": list(scenario.notes),
        "info": {"calls": CALLS, "failures": sum(1 for i in range(CALLS) if i % 3 == 0)},
        "contenders": results,
        "targets": targets,
        "seconds": time.perf_counter() - started,
    }


# -- the contenders ------------------------------------------------------------------------


def _buttress() -> Any:
    from buttress.breaker import CircuitBreaker

    return CircuitBreaker("x", window=100)


def _circuitbreaker() -> Any:
    import circuitbreaker

    return circuitbreaker.CircuitBreaker(name="bench-memory")


def _pybreaker() -> Any:
    import pybreaker

    return pybreaker.CircuitBreaker()


def _aiobreaker() -> Any:
    import aiobreaker

    return aiobreaker.CircuitBreaker()


def _purgatory() -> Any:
    import purgatory

    return purgatory.SyncCircuitBreakerFactory().get_breaker("x")


def _purgatory_call(brk: Any, fn: Callable[[], int]) -> int:
    with brk:
        return fn()


MEMORY = MemoryScenario(
    name="memory.breaker",
    title=f"memory held by one breaker (tracemalloc), built, then after {CALLS} calls",
    subject="buttress",
    limit=LIMIT,
    contenders=(
        MemoryContender(
            "buttress",
            "buttress",
            "CircuitBreaker('x', window=100)",
            _buttress,
            lambda b, fn: b.call(fn),
            lambda b: str(b.state),
        ),
        MemoryContender(
            "circuitbreaker",
            "circuitbreaker",
            "CircuitBreaker()",
            _circuitbreaker,
            lambda b, fn: b.call(fn),
            lambda b: str(b.state),
        ),
        MemoryContender(
            "pybreaker",
            "pybreaker",
            "CircuitBreaker()",
            _pybreaker,
            lambda b, fn: b.call(fn),
            lambda b: str(b.current_state),
        ),
        MemoryContender(
            "aiobreaker",
            "aiobreaker",
            "CircuitBreaker()",
            _aiobreaker,
            lambda b, fn: b.call(fn),
            lambda b: str(b.current_state.name).lower(),
        ),
        MemoryContender(
            "purgatory",
            "purgatory",
            "SyncCircuitBreakerFactory().get_breaker('x')",
            _purgatory,
            _purgatory_call,
            lambda b: str(b.context.state),
        ),
    ),
    notes=(
        "circuitbreaker keeps the last failure (with its traceback and frames) alive",
        "purgatory: the factory's in-memory unit of work and message bus are included",
    ),
)

SCENARIOS = (MEMORY,)
