"""What the task class, the replay handler and ``install`` share: the replay header, the
integration installed on each Celery app, and dead letter queues opened by URL per process."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from buttress.dlq import DeadLetterQueue
from buttress.registry import Registry

__all__ = ["REPLAY_HEADER", "Installed", "installed", "open_dlq", "remember", "replay_of"]

REPLAY_HEADER = "buttress_replay_of"
"""Message header naming the dead letter a task message replays: its failure is not
dead-lettered again, the replay handler waiting for it hands it back to the DLQ."""


class Installed(Protocol):
    """What a ``ResilientTask`` reads from the integration installed on its app."""

    registry: Registry

    def dead_letters(self) -> DeadLetterQueue | None:
        """The integration's dead letter queue in this process, or None."""


_installed: weakref.WeakKeyDictionary[Any, Installed] = weakref.WeakKeyDictionary()
_opened: dict[tuple[int, str], DeadLetterQueue] = {}
_lock = threading.Lock()


def remember(app: Any, integration: Installed | None) -> None:
    """Record (or with None forget) the integration installed on ``app``."""
    if integration is None:
        _installed.pop(app, None)
    else:
        _installed[app] = integration


def installed(app: Any) -> Installed | None:
    """The integration installed on ``app``, or None."""
    return _installed.get(app)


def open_dlq(url: str) -> DeadLetterQueue:
    """The ``DeadLetterQueue`` at ``url`` for this process: opened once per process (a prefork
    child opens its own after the fork) and shared by every task naming the same URL."""
    key = (os.getpid(), url)
    with _lock:
        dlq = _opened.get(key)
        if dlq is None:
            dlq = _opened[key] = DeadLetterQueue(url)
        return dlq


def replay_of(request: object) -> str | None:
    """The dead letter id a task request replays (its ``REPLAY_HEADER``), or None."""
    headers = getattr(request, "headers", None)
    value = headers.get(REPLAY_HEADER) if isinstance(headers, Mapping) else None
    if value is None:  # protocol 1 messages and some brokers flatten headers into the request
        value = getattr(request, REPLAY_HEADER, None)
    return value if isinstance(value, str) else None
