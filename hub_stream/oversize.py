"""The hub's first look at every record: is it small enough to read at all?

Before anything decodes, verifies or parses a record (of any input topic: an agency's
``.out``, ``registry.events``, ``hub.control``), its key and value are held against the
contract's limits (:data:`schemas.limits.KEY_BYTES`, :data:`schemas.limits.MESSAGE_BYTES`).
A record over them is not read: it is dead-lettered ``MALFORMED_MESSAGE`` with only the
first bytes of its value (and key) kept, the sending agency gets a ``HubError`` saying
which limit it broke, and the audit trail records ``DEAD_LETTERED``. Nothing of its
content is echoed, and none of it is ever larger than a small constant.
"""

from __future__ import annotations

import dataclasses

from aiokafka import ConsumerRecord

from schemas import limits
from schemas.models import ErrorCode

from . import refusals
from .context import FlowContext
from .outputs import Output

__all__ = ["refuse_oversize"]


def refuse_oversize(ctx: FlowContext, record: ConsumerRecord[bytes, bytes]) -> list[Output] | None:
    """The refusal of ``record`` if its key or value is over the limits, else None."""
    key_size = len(record.key) if record.key is not None else 0
    value_size = len(record.value) if record.value is not None else 0
    if key_size <= limits.KEY_BYTES and value_size <= limits.MESSAGE_BYTES:
        return None
    ctx.metrics["oversize"] += 1
    ctx.metrics["dead_lettered"] += 1
    detail = (
        f"not read: a {value_size}-byte value with a {key_size}-byte key, over the limits "
        f"of {limits.MESSAGE_BYTES} and {limits.KEY_BYTES} bytes (docs/contract.md, "
        f"Limits); the dead letter keeps only the first {limits.KEPT_BYTES} bytes of the value"
    )
    kept = dataclasses.replace(
        record,
        key=record.key[: limits.KEY_BYTES] if record.key is not None else None,
        value=record.value[: limits.KEPT_BYTES] if record.value is not None else None,
    )
    return refusals.dead_letter(ctx, kept, ErrorCode.MALFORMED_MESSAGE, detail)
