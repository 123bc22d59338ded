"""Sliding windows over recorded call outcomes, O(1) per record and bounded in memory.

Both windows are driven by a sequence number that every recorded outcome takes (successes take
one without a lock, from an ``itertools.count``); only failures and slow calls are stored. So the
success path never touches a window: the number of calls in a window is derived from sequence
numbers, and the failures in it are the stored ones that have not slid out.
"""

from __future__ import annotations

import math
from array import array

__all__ = ["CountWindow", "TimeWindow", "Window"]

_FAILED = 1
_SLOW = 2
_SEQ_MASK = (1 << 30) - 1


class CountWindow:
    """The last ``size`` recorded calls.

    Failures and slow calls are kept as ``(seq mod 2**30) << 2 | flags`` in a ring (an ``array``
    of at most ``size`` 4-byte slots, allocated at the first failure), oldest first. Every live
    entry is within ``size`` of the newest sequence number, so the truncated numbers are exact.
    """

    __slots__ = ("_head", "_last", "_len", "_ring", "base", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring: array[int] | None = None
        self._last = 0
        self._head = 0
        self._len = 0
        self.failures = 0
        self.slow = 0
        self.base = 0

    def clear(self, seq: int, now: float) -> None:
        """Forget everything recorded up to ``seq``."""
        self._head = self._len = self.failures = self.slow = 0
        self.base = seq

    def rotate(self, seq: int, now: float) -> None:
        """Nothing to do: a count window moves with the sequence, not with time."""

    def add(self, seq: int, now: float, failed: bool, slow: bool) -> None:
        """Record a failed and/or slow call that took sequence number ``seq``."""
        self._expire(seq)
        ring = self._ring
        if ring is None:
            ring = self._ring = array("I", bytes(4 * self.size))
        if self._len == self.size:  # cannot happen after _expire, kept as a guard
            self._pop()
        entry = (seq & _SEQ_MASK) << 2 | (_FAILED * failed) | (_SLOW * slow)
        ring[(self._head + self._len) % self.size] = entry
        self._len += 1
        self._last = seq
        self.failures += failed
        self.slow += slow

    def counts(self, seq: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) among the last ``size`` calls up to ``seq``."""
        self._expire(seq)
        return min(self.size, seq - self.base), self.failures, self.slow

    def _expire(self, seq: int) -> None:
        ring = self._ring
        if ring is None or not self._len:
            return
        if seq - self._last >= self.size:  # everything slid out
            self._head = self._len = self.failures = self.slow = 0
            return
        # An entry's age is (seq - its seq) mod 2**30; it has slid out once the age is >= size.
        while self._len and (seq - (ring[self._head] >> 2)) & _SEQ_MASK >= self.size:
            self._pop()

    def _pop(self) -> None:
        assert self._ring is not None
        flags = self._ring[self._head] & 3
        self.failures -= flags & _FAILED
        self.slow -= (flags & _SLOW) >> 1
        self._head = (self._head + 1) % self.size
        self._len -= 1


class TimeWindow:
    """The calls of the last ``seconds``, in ``buckets`` buckets (precision: one bucket's width).

    Each bucket keeps the sequence number at which it began plus its failure and slow counts;
    the calls in the window are the sequence numbers taken since the oldest live bucket began.
    Callers must ``rotate`` whenever ``now >= bucket_end`` so that bucket starts are exact.
    """

    __slots__ = ("_epoch", "_failures", "_slow", "_starts", "base", "bucket_end", "n", "width")

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self.n = buckets
        self.width = seconds / buckets
        self._starts = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._epoch = -(2**62)
        self.bucket_end = -math.inf
        self.base = 0

    def clear(self, seq: int, now: float) -> None:
        """Forget everything recorded up to ``seq``; the window starts at ``now``."""
        self.base = seq
        epoch = int(now // self.width)
        for i in range(self.n):
            self._starts[i] = seq
            self._failures[i] = self._slow[i] = 0
        self._epoch = epoch
        self.bucket_end = (epoch + 1) * self.width

    def rotate(self, seq: int, now: float) -> None:
        """Move to the bucket of ``now``; ``seq`` is the last sequence number taken so far."""
        epoch = int(now // self.width)
        if epoch <= self._epoch:
            return
        if epoch - self._epoch >= self.n or self._epoch < 0:
            steps = range(epoch - self.n + 1, epoch + 1)
        else:
            steps = range(self._epoch + 1, epoch + 1)
        for e in steps:
            i = e % self.n
            self._starts[i] = seq
            self._failures[i] = self._slow[i] = 0
        self._epoch = epoch
        self.bucket_end = (epoch + 1) * self.width

    def add(self, seq: int, now: float, failed: bool, slow: bool) -> None:
        """Record a failed and/or slow call that took sequence number ``seq`` at ``now``."""
        self.rotate(seq - 1, now)
        i = self._epoch % self.n
        self._failures[i] += failed
        self._slow[i] += slow

    def counts(self, seq: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window ending at ``now``, up to ``seq``."""
        self.rotate(seq, now)
        oldest = (self._epoch + 1) % self.n
        calls = seq - max(self.base, self._starts[oldest])
        return calls, sum(self._failures), sum(self._slow)


Window = CountWindow | TimeWindow
