"""Where settings come from: the file, ``${VAR}`` interpolation and ``BUTTRESS_*`` overrides."""

from __future__ import annotations

import copy
import datetime
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from buttress.config._errors import ConfigFileError, Problems, format_path

__all__ = [
    "CONFIG_VAR",
    "DEFAULT_FILE",
    "ENV_PREFIX",
    "PROFILE_VAR",
    "apply_overrides",
    "find_file",
    "interpolate",
    "merge",
    "parse_value",
    "read_file",
]

ENV_PREFIX = "BUTTRESS_"
CONFIG_VAR = "BUTTRESS_CONFIG"
PROFILE_VAR = "BUTTRESS_PROFILE"
DEFAULT_FILE = "buttress.toml"

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_INNER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SECRET_VAR = re.compile(r"PASS|PWD|TOKEN|SECRET|API_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)


def find_file(path: str | PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The file: ``path``, else ``$BUTTRESS_CONFIG``, else ``./buttress.toml`` if present."""
    if path is not None:
        chosen, origin = Path(path), ""
    elif environ.get(CONFIG_VAR):
        chosen, origin = Path(environ[CONFIG_VAR]), f" (named by {CONFIG_VAR})"
    else:
        local = Path(DEFAULT_FILE)
        return local if local.is_file() else None
    if not chosen.is_file():
        raise ConfigFileError([f"{chosen}: no such file{origin}"], str(chosen))
    return chosen


def read_file(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict; a syntax error raises ``ConfigFileError`` with its position."""
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError([f"invalid TOML: {exc}"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigFileError([f"{path}: cannot read: {reason}"], str(path)) from None


def interpolate(
    data: dict[str, Any], environ: Mapping[str, str], problems: Problems, secrets: list[str]
) -> dict[str, Any]:
    """``data`` with ``${VAR}`` and ``${VAR:-default}`` replaced in every string value.

    ``$$`` is a literal ``$``. A missing variable without a default is a problem naming the path
    and the variable. Values of variables named like secrets are appended to ``secrets``.
    """

    def substitute(text: str, path: tuple[str | int, ...]) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$$":
                return "$"
            inner = match.group(1)
            if inner is None:
                problems.add(path, "unclosed '${' (write '$$' for a literal '$')")
                return whole
            reference = _INNER.fullmatch(inner)
            if reference is None:
                problems.add(
                    path, f"invalid reference ${{{inner}}}: use ${{VAR}} or ${{VAR:-default}}"
                )
                return whole
            name, default = reference.group(1), reference.group(2)
            value = environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    problems.add(
                        path,
                        f"environment variable {name} is not set "
                        f"(give a default with ${{{name}:-default}})",
                    )
                    return whole
                return default
            if _SECRET_VAR.search(name):
                secrets.append(value)
            return value

        return _REFERENCE.sub(replace, text) if "$" in text else text

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, str):
            return substitute(value, path)
        if isinstance(value, dict):
            return {key: walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        return value

    result: dict[str, Any] = walk(data, ())
    return result


def parse_value(text: str) -> Any:
    """An environment value as a TOML value (``9000``, ``true``, ``["a"]``) or else the string."""
    try:
        document = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    value = document.get("value")
    if len(document) != 1 or isinstance(value, datetime.date | datetime.time):
        return text
    return value


def overrides(environ: Mapping[str, str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``(variable, path)`` of each ``BUTTRESS_A__B`` variable: only names holding ``__`` count."""
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :]:
            yield name, tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))


def apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str], problems: Problems
) -> dict[str, str]:
    """Set each ``BUTTRESS_*`` override in ``data``; returns the paths set, mapped to variables."""
    origins: dict[str, str] = {}
    for name, parts in overrides(environ):
        if not all(parts):
            problems.add((), f"{name}: empty path part (separate parts with one '__')")
            continue
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = format_path(parts[: depth + 1])
                problems.add((), f"{name}: cannot set {format_path(parts)}: {where} is not a table")
                break
            node = child
        else:
            node[parts[-1]] = parse_value(environ[name])
            origins[format_path(parts)] = name
    return origins


def merge(
    base: Mapping[str, Any],
    over: Mapping[str, Any],
    is_table: Callable[[tuple[str, ...]], bool],
    path: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables merge key by key, other values replace.

    ``is_table(path)`` says which dicts are structural tables (sections, entries) rather than
    option values such as a ``backoff`` table, which an override replaces whole.
    """
    result = copy.deepcopy(dict(base))
    for key, value in over.items():
        here = (*path, key)
        current = result.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and is_table(here):
            result[key] = merge(current, value, is_table, here)
        else:
            result[key] = copy.deepcopy(value)
    return result
