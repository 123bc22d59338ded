"""A private root for managed temporary paths in each test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root directory for managed temporary paths, private to the test."""
    return tmp_path / "managed"
