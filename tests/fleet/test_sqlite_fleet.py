"""Real processes of one host share a breaker through one SQLite file: state, and restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench._fleetproc import Fleet

from buttress.breaker import BreakerState, CircuitBreaker
from buttress.fleet import SharedCircuitBreaker
from buttress.stores import SQLiteStore

pytestmark = pytest.mark.slow

OPTIONS = {"minimum_calls": 5, "window": 20, "open_for": 30.0}


def test_manual_control_reaches_every_process(tmp_path: Path) -> None:
    """trip, disable and reset from this process reach three worker processes within 1 s."""
    db = tmp_path / "fleet.db"
    with Fleet(3, f"sqlite:///{db}", OPTIONS, tmp_path) as fleet:
        assert fleet.wait_for(lambda: min(fleet.arrays["ran"][:]) >= 5, 10) < 10
        with SQLiteStore(db, prefix=fleet.prefix) as store:
            control = CircuitBreaker("dep", shared=store, **OPTIONS)  # type: ignore[arg-type]
            assert isinstance(control, SharedCircuitBreaker)
            try:
                for act, state in (
                    (control.trip, "forced_open"),
                    (control.disable, "disabled"),
                    (control.reset, "closed"),
                ):
                    act()
                    took = fleet.wait_for(lambda s=state: set(fleet.states()) == {s}, 3)
                    assert took < 1.0, (state, fleet.states())
            finally:
                control.close()


def test_an_open_breaker_stays_open_across_a_restart(tmp_path: Path) -> None:
    """The dependency dies, the workers open; restarted workers start open and call nothing."""
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with Fleet(3, url, OPTIONS, tmp_path) as first:
        assert first.wait_for(lambda: min(first.arrays["ran"][:]) >= 5, 10) < 10
        first.kill_dependency()
        assert first.wait_for(lambda: set(first.states()) == {"open"}, 3) < 3
        prefix = first.prefix
    with Fleet(3, url, OPTIONS, tmp_path, prefix=prefix) as second:  # still dead
        time.sleep(0.05)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert second.total("hits") == 0  # nobody tried the dead dependency
            time.sleep(0.05)
        assert set(second.states()) == {"open"}
    with SQLiteStore(tmp_path / "fleet.db", prefix=prefix) as store:
        raw = store.get("breaker:dep")
    assert raw is not None
    assert raw.decode().startswith(BreakerState.OPEN.value)
