"""The process's fleet threads: one flushes every shared object, one listens to pub/sub.

Shared breakers and budgets register here (``SYNCER.add``). Two daemon threads start with the
first member and end when the last one is removed (``close()`` of the breaker or budget):

- ``buttress-fleet-sync`` runs each member's ``sync`` when it is due. Each member says when it
  next wants to sync (``due``, on ``time.monotonic``); ``nudge`` makes it due now and
  ``nudge_at`` sooner, and the thread wakes at once (it waits on an event, never on a socket).
- ``buttress-fleet-pubsub`` subscribes to the members' Redis ``channel``s, one ``PubSub`` per
  redis-py client, and hands every message to the member (``receive``) on arrival, so a state
  change published by another process is adopted without waiting for a sync. A broken
  subscription is dropped and re-made on a later round, so a Redis outage stops neither thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Protocol

__all__ = ["SYNCER", "Member", "Syncer"]

_LISTEN = 0.1
"""Seconds one subscriber waits for a message before looking at the members again."""
_POLL = 0.005
"""With several clients, the pause between rounds of non-blocking reads."""
_RESUBSCRIBE = 0.5
_MAX_WAIT = 0.1


class Member(Protocol):
    """What the fleet threads drive."""

    due: float
    channel: str | None
    """A pub/sub channel whose messages go to ``receive`` (None: none)."""

    def pubsub_client(self) -> Any | None:
        """The redis-py client to subscribe with, or None."""

    def sync(self) -> None:
        """Flush and refresh; must not raise; sets ``due`` to when it next wants to run."""

    def receive(self, data: bytes) -> None:
        """A message on ``channel`` (on the pub/sub thread); must not raise."""


class Syncer:
    """The sync thread and the pub/sub thread for every member; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: list[Member] = []
        self._wake = threading.Event()
        self._changed = threading.Event()  # the members changed: the pub/sub thread looks again
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._subs: dict[int, Any] = {}  # id(client) -> PubSub; the pub/sub thread's own
        self._subscribed: dict[int, set[str]] = {}
        self._retry_at: dict[int, float] = {}  # id(client) -> when to try subscribing again

    def add(self, member: Member) -> None:
        """Start driving ``member`` (and the threads, if they are not running)."""
        with self._lock:
            self._members.append(member)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="buttress-fleet-sync", daemon=True
                )
                self._thread.start()
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="buttress-fleet-pubsub", daemon=True
                )
                self._listener.start()
        self._wake.set()
        self._changed.set()

    def remove(self, member: Member) -> None:
        """Stop driving ``member``; the threads end (and are joined) after the last one."""
        with self._lock:
            if member in self._members:
                self._members.remove(member)
            threads = [self._thread, self._listener] if not self._members else []
        self._wake.set()
        self._changed.set()
        for thread in threads:
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

    # -- the sync thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.clear()  # before the scan: a nudge from now on ends the wait below
            with self._lock:
                members = list(self._members)
                if not members:
                    self._thread = None
                    return
            now = time.monotonic()
            for member in members:
                if now >= member.due:
                    member.sync()
            wait = min(m.due for m in members) - time.monotonic()
            if wait > 0:
                self._wake.wait(min(wait, _MAX_WAIT))

    # -- the pub/sub thread ----------------------------------------------------------------------

    def _listen(self) -> None:
        while True:
            with self._lock:
                members = list(self._members)
                if not members:
                    self._close_subs()
                    self._listener = None
                    return
            self._changed.clear()
            self._subscribe(members)
            if not self._subs:
                self._changed.wait(_MAX_WAIT)
                continue
            single = len(self._subs) == 1
            for key, sub in list(self._subs.items()):
                self._drain(key, sub, _LISTEN if single else 0.0)
            if not single:
                time.sleep(_POLL)

    def _drain(self, key: int, sub: Any, timeout: float) -> None:
        """Hand every waiting message of ``sub`` to its members (wait ``timeout`` for the first)."""
        while True:
            try:
                message = sub.get_message(timeout=timeout)
            except Exception:  # the connection broke: re-subscribe later
                self._drop(key)
                self._retry_at[key] = time.monotonic() + _RESUBSCRIBE
                return
            if message is None:
                return
            timeout = 0.0
            if message.get("type") != "message":
                continue
            channel = message["channel"]
            name = channel.decode() if isinstance(channel, bytes) else str(channel)
            data = message["data"]
            payload = data if isinstance(data, bytes) else str(data).encode()
            with self._lock:  # the members now: one added since this round began counts too
                current = list(self._members)
            for member in current:
                if member.channel == name:
                    member.receive(payload)

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
        for key in list(self._retry_at):
            if key not in wanted:
                del self._retry_at[key]
        for key, (client, channels) in wanted.items():
            if time.monotonic() < self._retry_at.get(key, 0.0):
                continue
            have = self._subscribed.get(key, set())
            try:
                sub = self._subs.get(key)
                if sub is None:
                    sub = self._subs[key] = client.pubsub(ignore_subscribe_messages=True)
                    have = set()
                new = channels - have
                if new:
                    sub.subscribe(*sorted(new))
                if have - channels:
                    sub.unsubscribe(*sorted(have - channels))
                self._subscribed[key] = set(channels)
            except Exception:  # Redis is down: members run on their own timers meanwhile
                self._drop(key)
                self._retry_at[key] = time.monotonic() + _RESUBSCRIBE
                continue
            with self._lock:  # news published before we listened: fetch it now
                current = list(self._members)
            for member in current:
                if member.channel in new:
                    self.nudge(member)

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
