"""``renkei audit trace``: every step of one exchange, in order, with timings.

An exchange is named by the hub's request id or by the requester's request id. Its
steps (FORWARDED, ANSWERED or TIMED_OUT, REFUSED) are about one person, so they sit in one
partition in the order they happened; a LATE_ANSWER is filed under the provider and is
joined by hub request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.codec import Codec
from schemas.models import AuditStep

from .replay import Entry, entries

__all__ = ["Exchange", "TraceStep", "trace"]


@dataclass(frozen=True)
class TraceStep:
    """One step, with the time since the first step and since the previous one."""

    entry: Entry
    since_start_ms: int
    since_previous_ms: int


class Exchange:
    """Picks the records of the exchange(s) ``request_id`` names from a stream of entries."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._found: list[Entry] = []
        self._late: dict[str, list[Entry]] = {}

    def add(self, entry: Entry) -> None:
        r = entry.record
        if self.request_id in (r.request_id, r.hub_request_id):
            self._found.append(entry)
        elif r.step is AuditStep.LATE_ANSWER and r.hub_request_id:
            self._late.setdefault(r.hub_request_id, []).append(entry)

    def entries(self) -> list[Entry]:
        """The exchange's records (late answers joined by hub request id), oldest first."""
        found = list(self._found)
        hub_ids = {e.record.hub_request_id for e in found if e.record.hub_request_id}
        for hub_id in hub_ids:
            found += self._late.get(hub_id, [])
        found.sort(key=lambda e: (e.occurred_ms, e.partition, e.offset))
        return found


async def trace(
    kafka: dict[str, Any], topic: str, codec: Codec, request_id: str
) -> list[TraceStep]:
    """The steps of the exchange(s) ``request_id`` names, oldest first.

    A requester's request id is unique only per requester: if two agencies used the same
    one, both exchanges are returned, each step naming its requester.
    """
    exchange = Exchange(request_id)
    async for entry in entries(kafka, topic, codec):
        exchange.add(entry)
    steps: list[TraceStep] = []
    for entry in exchange.entries():
        start = steps[0].entry.occurred_ms if steps else entry.occurred_ms
        previous = steps[-1].entry.occurred_ms if steps else entry.occurred_ms
        steps.append(TraceStep(entry, entry.occurred_ms - start, entry.occurred_ms - previous))
    return steps
