"""MemoryWatch: GC statistics, forced collection above a threshold, an event when RSS rises."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.errors import ConfigError
from buttress.ops.scheduler import Scheduler
from buttress.resources import MemoryCollected, MemoryRising, MemoryWatch, read_rss
from buttress.testing import ManualClock, RecordingListener

MIB = 1024 * 1024


def readings(values: Iterable[int]) -> Callable[[], int]:
    """A reader returning the given RSS values in turn."""
    it = iter(values)
    return lambda: next(it)


def test_a_sample_has_rss_and_gc_statistics() -> None:
    """A sample carries the reader's RSS, the clock's time and per-generation GC numbers."""
    clock = ManualClock(wall=1_000.0)
    watch = MemoryWatch(reader=readings([42 * MIB]), clock=clock)
    sample = watch.sample()
    assert sample.rss == 42 * MIB
    assert sample.time == 1_000.0
    assert len(sample.counts) == len(sample.collections) == 3
    assert len(sample.collected) == len(sample.uncollectable) == 3
    assert sample.collections[0] >= sample.collections[2]
    assert sample.garbage == len(gc.garbage)
    assert (sample.forced, sample.rising) == (False, 0)
    assert watch.last == sample
    assert watch.snapshot()["last"]["rss"] == 42 * MIB


def test_collection_is_forced_above_the_threshold_at_most_once_per_period() -> None:
    """Above collect_above, gc.collect() runs and RSS is read again; not again within
    collect_every; again once it has passed."""
    clock = ManualClock()
    watch = MemoryWatch(
        collect_above=100 * MIB,
        collect_every=60,
        reader=readings([150 * MIB, 120 * MIB, 130 * MIB, 140 * MIB, 90 * MIB]),
        clock=clock,
    )

    class Cycle:
        ref: object

    with RecordingListener() as events:
        cycle = Cycle()
        cycle.ref = cycle
        del cycle
        first = watch.sample()
        clock.advance(30)
        second = watch.sample()
        clock.advance(30)
        third = watch.sample()
    assert (first.forced, first.rss, first.freed) == (True, 120 * MIB, 30 * MIB)
    assert first.found >= 1  # the cycle
    assert (second.forced, second.rss) == (False, 130 * MIB)
    assert (third.forced, third.rss, third.freed) == (True, 90 * MIB, 50 * MIB)
    collected = events.of(MemoryCollected)
    assert [(e.before, e.after) for e in collected] == [
        (150 * MIB, 120 * MIB),
        (140 * MIB, 90 * MIB),
    ]
    assert watch.forced_collections == 2


def test_rising_memory_emits_an_event_every_n_rises() -> None:
    """Three rises in a row emit MemoryRising with the growth and span; six emit a second one."""
    clock = ManualClock()
    values = [100, 110, 120, 130, 140, 150, 160]
    watch = MemoryWatch(
        "api", rising_samples=3, reader=readings(v * MIB for v in values), clock=clock
    )
    with RecordingListener() as events:
        for _ in values:
            watch()
            clock.advance(10)
    rising = events.of(MemoryRising)
    assert [(e.samples, e.growth, e.rss, e.seconds) for e in rising] == [
        (3, 30 * MIB, 130 * MIB, 30.0),
        (6, 60 * MIB, 160 * MIB, 60.0),
    ]
    assert rising[0].source == "api"
    assert "rose 3 samples in a row" in rising[0].message()
    assert [s.rising for s in watch.samples] == [0, 1, 2, 3, 4, 5, 6]


def test_a_drop_or_a_small_rise_breaks_the_streak() -> None:
    """A fall, or a rise not above min_increase, resets the count: no event."""
    values = [100, 110, 120, 115, 125, 135, 135 + 1]
    watch = MemoryWatch(
        rising_samples=3, min_increase=2 * MIB, reader=readings(v * MIB for v in values)
    )
    with RecordingListener() as events:
        for _ in values:
            watch.sample()
    assert events.of(MemoryRising) == []
    assert [s.rising for s in watch.samples] == [0, 1, 2, 0, 1, 2, 0]


def test_samples_kept_are_bounded() -> None:
    """Only the newest `keep` samples are kept."""
    watch = MemoryWatch(keep=3, reader=readings(range(10)))
    for _ in range(10):
        watch.sample()
    assert [s.rss for s in watch.samples] == [7, 8, 9]


async def test_the_watch_is_a_scheduler_job() -> None:
    """The watch itself can be scheduled; a run samples once."""
    watch = MemoryWatch(reader=readings([5 * MIB]), clock=ManualClock())
    scheduler = Scheduler(clock=ManualClock())
    scheduler.add("memory-watch", watch, interval=60)
    run = await scheduler.run("memory-watch")
    assert run.outcome == "ok"
    assert [s.rss for s in watch.samples] == [5 * MIB]


def test_read_rss_reads_this_process() -> None:
    """The default reader returns a plausible RSS for this process (more than a MiB)."""
    assert read_rss() > MIB
    assert MemoryWatch().sample().rss > MIB


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"collect_above": 0}, "collect_above"),
        ({"collect_every": -1}, "collect_every"),
        ({"rising_samples": 0}, "rising_samples"),
        ({"min_increase": -1}, "min_increase"),
        ({"keep": 0}, "keep"),
        ({"reader": 5}, "reader"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], field: str) -> None:
    """Each bad option raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match=field):
        MemoryWatch(**kwargs)  # type: ignore[arg-type]


@given(
    values=st.lists(st.integers(0, 50), min_size=1, max_size=40),
    n=st.integers(1, 5),
    min_increase=st.integers(0, 5),
)
def test_streaks_and_events_follow_the_readings(
    values: list[int], n: int, min_increase: int
) -> None:
    """The streak is the run of rises above min_increase, and an event fires at every n-th rise
    of a run."""
    watch = MemoryWatch(rising_samples=n, min_increase=min_increase, reader=readings(values))
    with RecordingListener() as events:
        streaks = [watch.sample().rising for _ in values]
    expected, streak = [], 0
    for before, after in zip([None, *values], values, strict=False):
        streak = streak + 1 if before is not None and after - before > min_increase else 0
        expected.append(streak)
    assert streaks == expected
    assert len(events.of(MemoryRising)) == sum(1 for s in expected if s and s % n == 0)
