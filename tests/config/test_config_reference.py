"""The generated configuration reference is current and covers every configurable key."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress.config._reference import PAGE, main, render_reference
from buttress.config._schema import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_committed_reference_matches_the_generator() -> None:
    """docs/reference/configuration.md equals what the generator renders now (else regenerate)."""
    committed = (ROOT / PAGE).read_text()
    assert committed == render_reference(), "run: python -m buttress.config._reference"


def test_reference_lists_every_section_and_key() -> None:
    """Every named section of the schema and each of its keys has a row in the page."""
    text = render_reference()
    for section, spec in SECTIONS.items():
        assert f"### `[{section}.<name>]`" in text
        for key in spec.options:
            assert f"| `{key}` |" in text


def test_check_mode_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--check` exits 1 when the page differs and 0 once it has been written."""
    monkeypatch.chdir(tmp_path)
    assert main(["--check"]) == 1
    assert main([]) == 0
    assert main(["--check"]) == 0
