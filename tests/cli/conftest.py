"""Run the CLI in an empty directory with a clean environment; write configuration files."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No BUTTRESS_*, NO_COLOR or FORCE_COLOR from outside; run in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BUTTRESS_") or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], str]:
    """``write(toml)``: save it as buttress.toml in the scratch directory; returns its path."""

    def save(text: str, name: str = "buttress.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return save


@pytest.fixture
def stopped_port() -> int:
    """A local TCP port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
