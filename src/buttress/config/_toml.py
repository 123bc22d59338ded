"""A small TOML writer for ``buttress config show`` (tomllib reads TOML but does not write it)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["dumps"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps(
    data: Mapping[str, Any], *, is_table: Callable[[tuple[str, ...]], bool] = lambda _: True
) -> str:
    """``data`` as TOML that ``tomllib.loads`` reads back equal (None values are left out).

    A dict becomes a ``[table]`` when ``is_table(path)`` says so, else an inline table; a list
    of dicts becomes an array of tables ``[[...]]`` when its path is a table path.
    """
    lines: list[str] = []
    _table(data, (), is_table, lines)
    return "\n".join(lines).strip() + "\n"


def _table(
    data: Mapping[str, Any],
    path: tuple[str, ...],
    is_table: Callable[[tuple[str, ...]], bool],
    lines: list[str],
) -> None:
    nested: list[tuple[str, Any]] = []
    for key, value in data.items():
        if value is None:
            continue
        here = (*path, key)
        if _is_tables(value, here, is_table):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        here = (*path, key)
        header = ".".join(_key(part) for part in here)
        if isinstance(value, Mapping):
            # A table holding only tables needs no header of its own.
            if not value or not all(_is_tables(v, (*here, k), is_table) for k, v in value.items()):
                lines.extend(["", f"[{header}]"])
            _table(value, here, is_table, lines)
        else:
            for item in value:
                lines.extend(["", f"[[{header}]]"])
                _table(item, here, is_table, lines)


def _is_tables(value: object, path: tuple[str, ...], is_table: Callable[..., bool]) -> bool:
    if isinstance(value, Mapping):
        return is_table(path)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
        and is_table(path)
    )


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = (f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + ", ".join(items) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return _string(str(value))
