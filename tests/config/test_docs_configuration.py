"""docs/configuration.md: every TOML block loads, and every option of the schema is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from buttress.config import load_config
from buttress.config._schema import SECTIONS
from buttress.config._settings import SETTINGS_OPTIONS
from buttress.health.checks import CHECK_KINDS, check_options

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
ENV = {"DATABASE_URL": "postgresql://app:doc-pass@localhost:5432/app"}


def test_the_doc_has_toml_examples() -> None:
    """The reference shows the default file and a full example."""
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_toml_block_loads(index: int, tmp_path: Path) -> None:
    """Each ```toml block is a valid buttress.toml under every profile."""
    path = tmp_path / "buttress.toml"
    path.write_text(BLOCKS[index])
    for profile in ("production", "development", "testing"):
        assert load_config(path, profile=profile, environ=ENV).profile == profile


def test_the_default_block_is_what_no_file_gives(tmp_path: Path) -> None:
    """The documented default file equals the configuration loaded without a file."""
    path = tmp_path / "buttress.toml"
    path.write_text(BLOCKS[0])
    assert load_config(path, environ={}).data == load_config(environ={}).data


def test_every_option_is_documented() -> None:
    """Each key the loader accepts (policies, settings, checks) appears in the reference."""
    text = DOC.read_text()
    names = {name for section in SECTIONS.values() for name in section.options}
    names |= {name for options in SETTINGS_OPTIONS.values() for name in options}
    names |= {name for kind in CHECK_KINDS for name in check_options(kind)}
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert missing == []
