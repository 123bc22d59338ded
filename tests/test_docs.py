"""The examples in README.md, docs/ and docstrings run, and do what they say."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import pkgutil
import re
from pathlib import Path

import pytest

import buttress

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for index, match in enumerate(BLOCK.finditer(text)):
            found.append((str(path.relative_to(ROOT)), index, match.group(1)))
    return found


@pytest.mark.parametrize(("path", "index", "code"), _blocks(), ids=lambda v: str(v)[:40])
def test_markdown_example_runs(path: str, index: int, code: str) -> None:
    """Each python block runs; a trailing `# output` comment after print() must match."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{path}[{index}]", "exec"), {"__name__": f"doc_{index}"})
    expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    if expected and "print(" in code:
        assert out.getvalue().splitlines()[-len(expected) :] == expected


def _modules() -> list[str]:
    names = [buttress.__name__]
    for info in pkgutil.walk_packages(buttress.__path__, prefix="buttress."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    """Doctest examples in the package's docstrings pass."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra is missing
        pytest.skip(f"{name} needs an optional dependency: {exc}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_is_curated_and_sorted() -> None:
    """`buttress.__all__` is sorted and every name in it exists."""
    assert buttress.__all__ == sorted(buttress.__all__)
    for name in buttress.__all__:
        assert hasattr(buttress, name), name
