"""``ConfigFileError`` and the collector that gathers every problem of a file before raising it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from buttress._redact import redact
from buttress.errors import ConfigError

__all__ = ["ConfigFileError", "Problems", "format_path", "is_secret_key", "suggest"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
SECRET_KEY = re.compile(
    r"pass(word|wd)?$|^pwd$|token$|secret|sha256|api[_-]?key|authorization|credential|"
    r"private[_-]?key",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """Whether a key's value is a secret by its name (password, token, secret, sha256...)."""
    return isinstance(key, str) and SECRET_KEY.search(key) is not None


class ConfigFileError(ConfigError):
    """A configuration is invalid: ``errors`` lists every problem found, each with its path.

    ``str(error)`` names the file and lists all of them, one per line, e.g.
    ``health.checks.db.timeout: must be a duration > 0 seconds, got -1``.
    """

    def __init__(self, errors: Sequence[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        where = source or "configuration"
        count = len(self.errors)
        head = f"{where}: {count} error{'s' if count != 1 else ''}"
        ValueError.__init__(self, "\n  ".join([head, *self.errors]))
        self.field = "config"
        self.value = source
        self.expected = head

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[ConfigFileError], tuple[list[str], str | None]]:
        return (type(self), (self.errors, self.source))


def format_path(parts: Iterable[str | int]) -> str:
    """``("health", "checks", "db", "timeout")`` as ``health.checks.db.timeout``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        text += f".{key}" if text else key
    return text


def suggest(key: str, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``key`` is close to an allowed key, else an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """Every problem found while loading, each with its path; raised together at the end."""

    def __init__(self, origins: dict[str, str] | None = None) -> None:
        self.messages: list[str] = []
        self.paths: set[str] = set()
        self.origins: dict[str, str] = {} if origins is None else origins
        """Paths set from the environment, mapped to the variable that set them."""

    def __bool__(self) -> bool:
        return bool(self.messages)

    def add(self, path: Sequence[str | int], message: str) -> None:
        """Record ``message`` about the value at ``path`` (redacted: no secret ever shows)."""
        where = format_path(path)
        origin = self.origins.get(where)
        suffix = f" (set by {origin})" if origin else ""
        self.paths.add(where)
        self.messages.append(redact(f"{where}: {message}{suffix}" if where else message + suffix))

    def unknown(self, path: Sequence[str | int], allowed: Iterable[str], what: str = "key") -> None:
        """Record an unknown key, with a hint when it is close to an allowed one."""
        allowed = sorted(allowed)
        hint = suggest(str(path[-1]), allowed)
        if not hint and len(allowed) <= 8:
            hint = f" (expected one of: {', '.join(allowed)})"
        self.add(path, f"unknown {what}{hint}")

    def config_error(self, path: Sequence[str | int], exc: ConfigError) -> None:
        """Record a policy's ``ConfigError`` at ``path`` (the field it names already appended)."""
        shown = "<hidden>" if path and is_secret_key(path[-1]) else repr(exc.value)
        self.add(path, f"{exc.expected}, got {shown}")

    def failed_under(self, path: Sequence[str | int]) -> bool:
        """Whether a problem was already recorded at ``path`` or below it."""
        prefix = format_path(path)
        return any(p == prefix or p.startswith((prefix + ".", prefix + "[")) for p in self.paths)

    def raise_if_any(self, source: str | None) -> None:
        """Raise ``ConfigFileError`` listing every recorded problem, if there is any."""
        if self.messages:
            raise ConfigFileError(self.messages, source)
