"""Helpers: write a buttress.toml in a scratch directory and load it with a chosen environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from buttress.config import Config, ConfigFileError, load_config
from buttress.testing import ManualClock


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, with no BUTTRESS_* variable from the outside."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BUTTRESS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock for the policies a configuration builds."""
    return ManualClock()


Loader = Callable[..., Config]


@pytest.fixture
def load(tmp_path: Path, clock: ManualClock) -> Loader:
    """``load(toml, env={}, profile=None)``: write the file and load it on the manual clock."""

    def loader(
        text: str, env: Mapping[str, str] | None = None, profile: str | None = None, **kw: Any
    ) -> Config:
        path = tmp_path / "buttress.toml"
        path.write_text(text)
        return load_config(path, profile=profile, environ=dict(env or {}), clock=clock, **kw)

    return loader


@pytest.fixture
def errors(load: Loader) -> Callable[..., list[str]]:
    """``errors(toml, env={})``: the errors a bad file yields (fails if it loads)."""

    def collect(text: str, env: Mapping[str, str] | None = None, **kw: Any) -> list[str]:
        with pytest.raises(ConfigFileError) as caught:
            load(text, env, **kw)
        return caught.value.errors

    return collect
