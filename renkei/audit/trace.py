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

__all__ = ["TraceStep", "trace"]


@dataclass(frozen=True)
class TraceStep:
    """One step, with the time since the first step and since the previous one."""

    entry: Entry
    since_start_ms: int
    since_previous_ms: int


async def trace(
    kafka: dict[str, Any], topic: str, codec: Codec, request_id: str
) -> list[TraceStep]:
    """The steps of the exchange(s) ``request_id`` names, oldest first.

    A requester's request id is unique only per requester: if two agencies used the same
    one, both exchanges are returned, each step naming its requester.
    """
    found: list[Entry] = []
    late: dict[str, list[Entry]] = {}
    async for entry in entries(kafka, topic, codec):
        r = entry.record
        if request_id in (r.request_id, r.hub_request_id):
            found.append(entry)
        elif r.step is AuditStep.LATE_ANSWER and r.hub_request_id:
            late.setdefault(r.hub_request_id, []).append(entry)
    hub_ids = {e.record.hub_request_id for e in found if e.record.hub_request_id}
    for hub_id in hub_ids:
        found += late.get(hub_id, [])
    found.sort(key=lambda e: (e.occurred_ms, e.partition, e.offset))
    steps: list[TraceStep] = []
    for entry in found:
        start = steps[0].entry.occurred_ms if steps else entry.occurred_ms
        previous = steps[-1].entry.occurred_ms if steps else entry.occurred_ms
        steps.append(TraceStep(entry, entry.occurred_ms - start, entry.occurred_ms - previous))
    return steps
