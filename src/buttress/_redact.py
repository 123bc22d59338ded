"""Keep secrets out of health output, logs and metrics.

``redact(text)`` masks passwords in URLs and DSNs (``postgresql://u:secret@h`` becomes
``postgresql://u:***@h``), ``key=value`` secrets (``password=``, ``token=``, ``secret=``,
``apikey=``) and every value registered with ``add_secret`` (tokens from configuration).
"""

from __future__ import annotations

import re
import threading

__all__ = ["add_secret", "is_secret_key", "redact"]

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)@")
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|token|secret|api[_-]?key|authorization)\s*[=:]\s*)"
    r"(?P<secret>'[^']*'|\"[^\"]*\"|[^\s&;,]+)",
    re.IGNORECASE,
)
_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


_SECRET_KEY = re.compile(
    r"password|passwd|pwd|secret|token|api[_-]?key|authorization|credential|sha256",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``password``, ``api_key``, ``token``...), so that its
    value is masked whole rather than searched."""
    return bool(_SECRET_KEY.search(key))


def add_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in redacted text (values under 4 characters are not)."""
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with passwords, tokens and registered secrets replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text
