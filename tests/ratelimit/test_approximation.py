"""How far the sliding window counter strays from the exact sliding window (the log).

``python -m tests.ratelimit.test_approximation`` prints the table in docs/ratelimit.md; the
tests check smaller runs of the same measurements against the bounds documented there.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from buttress.ratelimit import SlidingWindowCounter, SlidingWindowLog


def measure(limit: int, load: float, requests: int, seed: int = 1) -> dict[str, float]:
    """Poisson arrivals at ``load`` times the limit, through a counter and a log, window 1 s.

    ``peak``: the most the counter admitted in any 1 s window, over ``limit``. ``over``: the
    share of requests the counter admitted although its own last second already held
    ``limit``. ``throughput``: the counter's admissions over the log's, same arrivals."""
    rng = random.Random(seed)
    counter, log = SlidingWindowCounter(limit, 1.0), SlidingWindowLog(limit, 1.0)
    counter_state: Any = None
    log_state: Any = None
    recent: deque[float] = deque()
    now, peak, over, by_counter, by_log = 0.0, 0, 0, 0, 0
    for _ in range(requests):
        now += rng.expovariate(load * limit)
        while recent and recent[0] + 1.0 <= now:
            recent.popleft()
        new, decision = counter.decide(counter_state, now, 1)
        if decision.allowed:
            counter_state = new
            over += len(recent) >= limit
            recent.append(now)
            peak = max(peak, len(recent))
            by_counter += 1
        new, decision = log.decide(log_state, now, 1)
        if decision.allowed:
            log_state, by_log = new, by_log + 1
    return {"peak": peak / limit, "over": over / requests, "throughput": by_counter / by_log}


def worst_case(limit: int) -> float:
    """The most the counter admits in one sliding window, over ``limit``, when a full window
    arrives at the very end of a grid window and requests keep coming after it."""
    counter = SlidingWindowCounter(limit, 1.0)
    state, _ = counter.decide(None, 0.0, 1)  # the grid window [0, 1) opens
    times = [0.0]
    for _ in range(limit - 1):
        state, _ = counter.decide(state, 0.999999, 1)
        times.append(0.999999)
    now, step = 1.0, 1.0 / (limit * 50)
    while now < 2.0:
        new, decision = counter.decide(state, now, 1)
        if decision.allowed:
            state = new
            times.append(now)
        now += step
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] + 1.0 <= t:
            first += 1
        most = max(most, last - first + 1)
    return most / limit


def test_counter_overshoot_under_random_load_is_small() -> None:
    """Under Poisson load around the limit, the counter exceeds it by a few percent at most,
    and admits about as many requests as the exact log."""
    for load in (0.9, 1.1, 2.0):
        got = measure(100, load, 20_000)
        assert got["peak"] <= 1.25
        assert 0.97 <= got["throughput"] <= 1.03
    assert measure(100, 0.5, 20_000)["over"] == 0.0


def test_counter_worst_case_approaches_twice_the_limit() -> None:
    """A full window just before a grid boundary lets nearly ``2 * limit`` through one
    sliding window (the documented worst case), never more."""
    for limit in (10, 100):
        ratio = worst_case(limit)
        assert 1.75 <= ratio <= 2.0


if __name__ == "__main__":  # pragma: no cover - regenerates the table in docs/ratelimit.md
    print("| limit | load | peak in any window | admitted while full | vs exact log |")
    print("|---:|---:|---:|---:|---:|")
    for limit in (10, 100, 1000):
        for load in (0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0):
            m = measure(limit, load, 200_000)
            print(
                f"| {limit} | {load:g}x | {m['peak']:.3f}x | {m['over']:.2%} |"
                f" {m['throughput'] - 1:+.2%} |"
            )
    for limit in (10, 100, 1000):
        print(f"worst case, limit {limit}: {worst_case(limit):.3f}x")
