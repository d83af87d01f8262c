"""When each forwarded request times out: a heap of deadlines, bounded by what is waiting.

The hub forwards up to tens of thousands of requests a second with deadlines of up to a
day; almost all are answered long before. A heap that kept every request until its
deadline would hold tens of millions of answered entries (20,000/s × one hour ≈ 72
million). So :class:`Deadlines` keeps the deadline of each *waiting* request in a dict and
deletes lazily from the heap: an answered request only becomes a dead heap entry, and
when dead entries outnumber live ones the heap is rebuilt from the dict — amortised O(1)
per answer, and never more than about twice as many entries as requests waiting.

It follows the ``pending`` table (:meth:`changed` is the table's ``on_change``), staged
changes and their undoing included, so a request forwarded and answered in one batch, or
rolled back with its record, leaves nothing behind.
"""

from __future__ import annotations

import heapq
from typing import Protocol

__all__ = ["Deadlines", "HasDeadline"]


class HasDeadline(Protocol):
    """A pending row: it knows when it times out."""

    @property
    def deadline_ms(self) -> int: ...


class Deadlines:
    """The deadlines of the requests still waiting, soonest first."""

    def __init__(self) -> None:
        self._live: dict[str, int] = {}  # hub request id → its deadline
        self._heap: list[tuple[int, str]] = []  # may hold dead entries (lazy deletion)

    def __len__(self) -> int:
        """Requests waiting."""
        return len(self._live)

    @property
    def stored(self) -> int:
        """Heap entries, dead ones included (at most ``2 × len(self) + 1``)."""
        return len(self._heap)

    def changed(self, key: str, old: HasDeadline | None, new: HasDeadline | None) -> None:
        """Follow one change of the pending table."""
        if new is None:
            self.disarm(key)
        else:
            self.arm(key, new.deadline_ms)

    def arm(self, key: str, deadline_ms: int) -> None:
        """``key`` times out at ``deadline_ms`` (replacing any earlier deadline of it)."""
        if self._live.get(key) == deadline_ms:
            return
        self._live[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, key))
        self._compact()

    def disarm(self, key: str) -> None:
        """``key`` no longer waits (answered, timed out, or never staged after all)."""
        if self._live.pop(key, None) is not None:
            self._compact()

    def due(self, now_ms: int) -> list[str]:
        """Take the requests whose deadline is ``now_ms`` or earlier, soonest first.

        They are disarmed: the caller times each out (deleting its pending row), or arms it
        again to retry later. A rolled-back time-out re-arms itself through the table.
        """
        found: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            deadline_ms, key = heapq.heappop(heap)
            if self._live.get(key) == deadline_ms:
                del self._live[key]
                found.append(key)
        self._compact()
        return found

    def _compact(self) -> None:
        # Each live key has one entry with its current deadline; every other entry is dead.
        if len(self._heap) > 2 * len(self._live) + 1:
            self._heap = [(deadline, key) for key, deadline in self._live.items()]
            heapq.heapify(self._heap)
