"""The rate limiters, load shedders and work queues of a registry as plain data.

What ``GET /admin/reliability/limits`` answers and ``buttress limits`` prints (no web framework
here: the CLI uses it without the ``server`` extra). Per rate limiter: its algorithm and
parameters, decisions allowed and refused, keys held, callers waiting and, for a limiter that is
one quota (not ``keyed``), what is left now; per concurrency limiter, throttle and queue: its
options and its snapshot. Keys themselves never appear (a key may be an API token).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from buttress.ops._events import redact_tree
from buttress.registry import Registry

__all__ = ["SECTIONS", "limits_view"]

SECTIONS = {
    "limiters": "limiter",
    "concurrency": "concurrency",
    "throttles": "throttle",
    "queues": "queue",
}
"""The view's lists and the registry kind each one lists."""

_WORD = re.compile(r"(?<!^)(?=[A-Z][a-z])")


def limits_view(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """Every rate limiter, concurrency limiter, throttle and work queue, by name, redacted."""
    view: dict[str, list[dict[str, Any]]] = {
        "limiters": [_limiter(registry, limiter) for limiter in registry.limiters()],
        "concurrency": [_shedder(item) for item in registry.of_kind("concurrency")],
        "throttles": [_shedder(item) for item in registry.of_kind("throttle")],
        "queues": [_shedder(item) for item in registry.of_kind("queue")],
    }
    result: dict[str, list[dict[str, Any]]] = redact_tree(view)
    return result


def algorithm_name(cls_name: str) -> str:
    """``"SlidingWindowLog"`` as ``"sliding_window_log"`` (the name ``buttress.toml`` uses)."""
    return _WORD.sub("_", cls_name).lower()


def _limiter(registry: Registry, limiter: Any) -> dict[str, Any]:
    snap = limiter.snapshot()
    parameters = dict(snap.algorithm)
    kind = parameters.pop("algorithm", type(limiter.algorithm).__name__)
    keyed = registry.is_keyed(limiter.name)
    entry: dict[str, Any] = {
        "name": limiter.name,
        "algorithm": algorithm_name(kind),
        "parameters": parameters,
        "max_wait": limiter.options.max_wait,
        "keyed": keyed,
        "store": "memory" if getattr(snap, "store", None) is None else "fleet",
        "lease": getattr(limiter.options, "lease", 0.0),
        "degraded": bool(getattr(snap, "degraded", False)),  # the fleet store is unreachable
        "allowed": snap.allowed,
        "refused": snap.refused,
        "keys": snap.keys,
        "waiting": snap.waiting,
        "limit": limiter.algorithm.limit,
        "remaining": None,
        "retry_after": None,
        "reset_after": None,
    }
    if not keyed:  # one quota: how it stands now (what the next call to the policy finds)
        try:
            decision = limiter.peek("")
        except Exception as exc:  # a fleet limiter whose store is down
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            # peek answers as if it took one unit: add it back to say what is left now.
            entry["remaining"] = decision.remaining + 1 if decision.allowed else 0
            entry["retry_after"] = decision.retry_after
            entry["reset_after"] = decision.reset_after
    reason = getattr(snap, "degraded_reason", None)
    if entry["degraded"] and reason and "error" not in entry:
        entry["error"] = reason
    return entry


def _shedder(item: Any) -> dict[str, Any]:
    snap = dataclasses.asdict(item.snapshot())
    entry: dict[str, Any] = {"name": item.name, "policy": type(item).__name__}
    if "limit" in snap and "algorithm" not in snap:
        entry["algorithm"] = "fixed"  # a ConcurrencyLimiter
    entry["options"] = item.describe()["options"]
    entry.update((key, list(v) if isinstance(v, tuple) else v) for key, v in snap.items())
    return entry
