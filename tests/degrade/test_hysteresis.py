"""The level's decision core: rises at once, falls only after the hysteresis, never flaps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.degrade import DegradationLevel
from buttress.degrade._hysteresis import LevelTracker

N, MINOR, MODERATE, SEVERE = (
    DegradationLevel.NORMAL,
    DegradationLevel.MINOR,
    DegradationLevel.MODERATE,
    DegradationLevel.SEVERE,
)
RULE_LEVELS = [level for level in DegradationLevel if level < DegradationLevel.MAINTENANCE]


def test_rises_at_once_and_falls_after_the_hysteresis() -> None:
    """A higher target is taken at once; a lower one only after 30 s below."""
    tracker = LevelTracker(30.0)
    assert tracker.observe(SEVERE, 0.0) is SEVERE
    assert tracker.observe(N, 1.0) is None
    assert tracker.falls_at() == 31.0
    assert tracker.observe(N, 30.9) is None
    assert tracker.observe(N, 31.0) is N
    assert tracker.level is N
    assert tracker.falls_at() is None


def test_a_target_back_at_the_level_restarts_the_wait() -> None:
    """Going back up to the level during the wait cancels the pending fall."""
    tracker = LevelTracker(10.0)
    tracker.observe(MODERATE, 0.0)
    tracker.observe(N, 1.0)
    tracker.observe(MODERATE, 5.0)
    assert tracker.falls_at() is None
    assert tracker.observe(N, 12.0) is None
    assert tracker.observe(N, 21.9) is None
    assert tracker.observe(N, 22.0) is N


def test_falls_to_the_highest_target_seen_while_waiting() -> None:
    """From SEVERE, a wait that saw MINOR and NORMAL falls to MINOR first, then to NORMAL."""
    tracker = LevelTracker(10.0)
    tracker.observe(SEVERE, 0.0)
    tracker.observe(N, 1.0)
    tracker.observe(MINOR, 4.0)
    assert tracker.observe(N, 11.0) is MINOR
    assert tracker.observe(N, 12.0) is None
    assert tracker.observe(N, 22.0) is N


def test_zero_hysteresis_follows_the_target() -> None:
    """With no hysteresis the level is the target at every observation."""
    tracker = LevelTracker(0.0)
    for target in (SEVERE, MINOR, N, MODERATE, N):
        tracker.observe(target, 1.0)
        assert tracker.level is target


observations = st.lists(
    st.tuples(st.floats(min_value=0, max_value=20), st.sampled_from(RULE_LEVELS)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(hysteresis=st.floats(min_value=0.5, max_value=30), steps=observations)
def test_never_below_target_and_never_flaps(
    hysteresis: float, steps: list[tuple[float, DegradationLevel]]
) -> None:
    """For any sequence: the level is never below the target; a fall from L happens only after
    every target for ``hysteresis`` seconds was below L; two falls are ``hysteresis`` apart."""
    tracker = LevelTracker(hysteresis)
    now = 0.0
    seen: list[tuple[float, DegradationLevel]] = []
    window_start = 0  # index of the first observation that can count towards the next fall
    last_fall: float | None = None
    for gap, target in steps:
        now += gap
        before = tracker.level
        tracker.observe(target, now)
        seen.append((now, target))
        assert tracker.level >= target
        if target >= before:
            window_start = len(seen)
        if tracker.level < before:
            window = seen[window_start:]
            assert window
            assert now - window[0][0] >= hysteresis
            assert all(t < before for _, t in window)
            assert tracker.level == max(t for _, t in window)
            if last_fall is not None:
                assert now - last_fall >= hysteresis
            last_fall, window_start = now, len(seen)


@settings(max_examples=200, deadline=None)
@given(
    hysteresis=st.floats(min_value=0.5, max_value=30),
    start=observations,
    final=st.sampled_from(RULE_LEVELS),
)
def test_settles_on_a_steady_target(
    hysteresis: float, start: list[tuple[float, DegradationLevel]], final: DegradationLevel
) -> None:
    """Whatever came before, a target held steady long enough becomes the level."""
    tracker = LevelTracker(hysteresis)
    now = 0.0
    for gap, target in start:
        now += gap
        tracker.observe(target, now)
    for _ in range(len(DegradationLevel) * 3):
        now += hysteresis / 2
        tracker.observe(final, now)
    assert tracker.level is final
