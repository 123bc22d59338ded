"""Every telemetry test leaves the event listeners as it found them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from buttress import events


@pytest.fixture(autouse=True)
def no_leaked_listeners() -> Iterator[None]:
    """A collector left open (or a registry kept alive by render) would leak its listener."""
    gc.collect()  # what earlier tests left for the collector goes now, not during this test
    before = events.listeners()
    yield
    gc.collect()
    # Only listeners this test added count: earlier tests' weak taps may go away meanwhile.
    assert [listener for listener in events.listeners() if listener not in before] == []
