"""The breaker's windows agree with a naive model for any sequence of outcomes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.breaker._window import CountWindow, TimeWindow

# 0: success, 1: failure, 2: slow success, 3: slow failure
outcomes = st.lists(st.integers(min_value=0, max_value=3), max_size=400)


@given(size=st.integers(min_value=1, max_value=50), seq=outcomes)
def test_count_window_matches_last_n_outcomes(size: int, seq: list[int]) -> None:
    """Calls, failures and slow calls equal those of the last `size` outcomes, after every call."""
    window = CountWindow(size)
    history: list[int] = []
    for n, outcome in enumerate(seq, start=1):
        history.append(outcome)
        failed, slow = bool(outcome & 1), bool(outcome & 2)
        if failed or slow:
            window.add(n, 0.0, failed, slow)
        last = history[-size:]
        expected = (len(last), sum(o & 1 for o in last), sum(1 for o in last if o & 2))
        assert window.counts(n, 0.0) == expected


@given(size=st.integers(min_value=1, max_value=8), gap=st.integers(min_value=1, max_value=3000))
def test_count_window_survives_long_quiet_runs(size: int, gap: int) -> None:
    """A failure long ago never reappears, however many successes came after it."""
    window = CountWindow(size)
    window.add(1, 0.0, True, False)
    seq = 1 + gap + (1 << 30) * (gap % 2)  # also jump past the 30-bit truncation
    window.add(seq, 0.0, True, False)
    calls, failures, _ = window.counts(seq, 0.0)
    assert failures == (2 if seq - 1 < size else 1)
    assert calls == min(size, seq)


@settings(max_examples=200)
@given(
    seconds=st.integers(min_value=1, max_value=100),
    events=st.lists(
        st.tuples(st.floats(min_value=0, max_value=50, allow_nan=False), st.booleans()),
        max_size=200,
    ),
)
def test_time_window_brackets_the_exact_count(seconds: int, events: list) -> None:
    """Counted calls lie between the exact counts over (now - W + width, now] and (now - W, now]."""
    window = TimeWindow(float(seconds))
    window.clear(0, 0.0)
    now = 0.0
    times: list[tuple[float, bool]] = []
    for seq, (step, failed) in enumerate(events, start=1):
        now += step
        if now >= window.bucket_end:
            window.rotate(seq - 1, now)
        times.append((now, failed))
        if failed:
            window.add(seq, now, True, False)
        calls, failures, _ = window.counts(seq, now)
        upper = [f for t, f in times if t > now - seconds]
        lower = [f for t, f in times if t >= now - seconds + window.width]
        assert len(lower) <= calls <= len(upper)
        assert sum(lower) <= failures <= sum(upper)
