"""The process's one fleet sync thread: flushes every shared object off the hot path.

Shared breakers and budgets register here (``SYNCER.add``); a daemon thread named
``buttress-fleet-sync`` starts with the first member and ends when the last one is removed
(``close()`` of the breaker or budget). Each member says when it next wants to sync
(``due``, on ``time.monotonic``); ``nudge`` makes it due now (a failure seen by a breaker, a
pub/sub message). Members with a Redis ``channel`` are subscribed through one ``PubSub`` per
redis-py client, polled in steps of at most ``_POLL`` seconds; a broken subscription is dropped
and re-made on a later round, so a Redis outage never stops the thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Protocol

__all__ = ["SYNCER", "Member", "Syncer"]

_POLL = 0.01
_RESUBSCRIBE = 0.5


class Member(Protocol):
    """What the sync thread drives."""

    due: float
    channel: str | None
    """A pub/sub channel whose messages make the member due (None: none)."""

    def pubsub_client(self) -> Any | None:
        """The redis-py client to subscribe with, or None."""

    def sync(self) -> None:
        """Flush and refresh; must not raise; sets ``due`` to when it next wants to run."""


class Syncer:
    """One thread for every member; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: list[Member] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._subs: dict[int, Any] = {}  # id(client) -> PubSub
        self._subscribed: dict[int, set[str]] = {}
        self._retry_at = 0.0

    def add(self, member: Member) -> None:
        """Start driving ``member`` (and the thread, if it is not running)."""
        with self._lock:
            self._members.append(member)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="buttress-fleet-sync", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def remove(self, member: Member) -> None:
        """Stop driving ``member``; the thread ends (and is joined) after the last one."""
        with self._lock:
            if member in self._members:
                self._members.remove(member)
            thread = self._thread if not self._members else None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def nudge(self, member: Member) -> None:
        """Make ``member`` due now."""
        member.due = 0.0
        self._wake.set()

    def nudge_at(self, member: Member, when: float) -> None:
        """Make ``member`` due at ``when`` (``time.monotonic``) if that is sooner."""
        if when < member.due:
            member.due = when
            self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                members = list(self._members)
                if not members:
                    self._close_subs()
                    self._thread = None
                    return
            now = time.monotonic()
            for member in members:
                if now >= member.due:
                    member.sync()
            self._subscribe(members)
            wait = min(m.due for m in members) - time.monotonic()
            self._wait(members, max(0.0, min(wait, 0.1)))

    def _wait(self, members: list[Member], seconds: float) -> None:
        if not self._subs:
            self._wake.wait(seconds)
            self._wake.clear()
            return
        end = time.monotonic() + seconds
        while True:
            for key, sub in list(self._subs.items()):
                try:
                    message = sub.get_message(timeout=0.0 if len(self._subs) > 1 else _POLL)
                except Exception:  # the connection broke: re-subscribe later
                    self._drop(key)
                    continue
                while message is not None:
                    if message.get("type") == "message":
                        channel = message["channel"]
                        name = channel.decode() if isinstance(channel, bytes) else channel
                        for member in members:
                            if member.channel == name:
                                member.due = 0.0
                    try:
                        message = sub.get_message(timeout=0.0)
                    except Exception:
                        self._drop(key)
                        break
            if len(self._subs) > 1:
                self._wake.wait(_POLL)
            if self._wake.is_set() or time.monotonic() >= end or not self._subs:
                self._wake.clear()
                return

    def _subscribe(self, members: list[Member]) -> None:
        wanted: dict[int, tuple[Any, set[str]]] = {}
        for member in members:
            if member.channel is None:
                continue
            client = member.pubsub_client()
            if client is not None:
                wanted.setdefault(id(client), (client, set()))[1].add(member.channel)
        for key in list(self._subs):
            if key not in wanted:
                self._drop(key)
        if time.monotonic() < self._retry_at:
            return
        for key, (client, channels) in wanted.items():
            have = self._subscribed.get(key, set())
            try:
                sub = self._subs.get(key)
                if sub is None:
                    sub = self._subs[key] = client.pubsub(ignore_subscribe_messages=True)
                    have = set()
                if channels - have:
                    sub.subscribe(*sorted(channels - have))
                if have - channels:
                    sub.unsubscribe(*sorted(have - channels))
                self._subscribed[key] = set(channels)
            except Exception:  # Redis is down: members run on their own timers meanwhile
                self._drop(key)
                self._retry_at = time.monotonic() + _RESUBSCRIBE

    def _drop(self, key: int) -> None:
        sub = self._subs.pop(key, None)
        self._subscribed.pop(key, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                sub.close()

    def _close_subs(self) -> None:
        for key in list(self._subs):
            self._drop(key)


SYNCER = Syncer()
