"""Small typed records that stand in for an output Kafka will never accept.

A record over its topic's limit (:mod:`.limits`), or one the broker refused with a
non-retriable per-record error, cannot be written however often the batch is retried.
Dropping it would lose a message silently; failing the batch forever would stop everyone
else's traffic. So the loop replaces it with:

* a :class:`~schemas.models.DeadLetter` on ``hub.deadletter`` with the original's value
  dropped, naming where it was going (topic, partition; ``source_offset`` -1: it never had
  one), its size, its type and message id, and why it was refused. An oversize dead letter
  is replaced by itself minus the parked value: it keeps naming the input's topic,
  partition and offset;
* and, when the original was a message to an agency (``agency.<id>.in``), a signed
  :class:`~schemas.models.HubError` ``INTERNAL`` in its place (same topic, key, partition;
  its request id and correlation id), so a caller waiting for an answer gets a typed one
  instead of a TIMEOUT.

Both are a few hundred bytes. The rest of the batch is written as it was.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Protocol

from renkei.errors import DecodeError
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import DeadLetter, ErrorCode, Header, HubError, Message

from .ids import derive_id
from .outputs import Output

__all__ = ["Replacer", "StandIns"]

log = logging.getLogger(__name__)


class Replacer(Protocol):
    """Builds the records that replace ``output`` (bound for ``partition``), never written."""

    def __call__(self, output: Output, partition: int, reason: str) -> list[Output]: ...


class StandIns:
    """The hub's :class:`Replacer`.

    :param topics: topic names (for ``hub.deadletter`` and recognising agency topics).
    :param codec: decodes the original (to name it) and encodes the stand-ins.
    :param sign: signs a message to an agency (identity in ``trust-acl`` mode).
    """

    def __init__(self, topics: Topics, codec: Codec, sign: Callable[[Message], Message]) -> None:
        self.topics = topics
        self.codec = codec
        self.sign = sign

    def __call__(self, output: Output, partition: int, reason: str) -> list[Output]:
        value = output.value or b""
        try:
            original = self.codec.decode(value) if value else None
        except DecodeError:
            original = None  # state and control records are JSON, not contract messages
        log.error(
            "%d-byte record for %s[%d] cannot be written (%s): replaced by a stand-in",
            len(value), output.topic, partition, reason,
        )  # fmt: skip
        if isinstance(original, DeadLetter):
            parked = original.model_copy(
                update={
                    "detail": f"{original.detail[:500]} | not parked whole: {reason}; "
                    f"its {len(original.value)}-byte value was dropped",
                    "value": b"",
                }
            )
            return [Output(output.topic, output.key, self.codec.encode(parked), partition)]
        header = getattr(original, "header", None)
        message_id = header.message_id if isinstance(header, Header) else None
        what = f"{type(original).__name__} {message_id}" if message_id else "record"
        about = message_id or hashlib.blake2b(value, digest_size=16).hexdigest()
        letter = DeadLetter(
            header=Header.new("hub", message_id, message_id=derive_id("unwritable", about)),
            source_topic=output.topic,
            source_partition=partition,
            source_offset=-1,
            reason=ErrorCode.INTERNAL,
            detail=f"{what} of {len(value)} bytes for {output.topic}[{partition}] not "
            f"written: {reason}; its value was dropped"[:1000],
            key=None,  # as every letter: a key may be an identifier too
            value=b"",
        )
        outputs = [Output(self.topics.deadletter, None, self.codec.encode(letter))]
        if header is not None and self._is_agency_inbox(output.topic):
            request_id = getattr(original, "request_id", None) or getattr(
                original, "hub_request_id", None
            )
            error = HubError(
                header=Header.new(
                    "hub", header.correlation_id, message_id=derive_id("unwritable-error", about)
                ),
                code=ErrorCode.INTERNAL,
                detail=f"the hub's {type(original).__name__} ({len(value)} bytes) was too "
                "large to deliver and was dropped; hub.deadletter has the details",
                request_id=request_id,
                retriable=False,
            )
            outputs.append(
                Output(output.topic, output.key, self.codec.encode(self.sign(error)), partition)
            )
        return outputs

    def _is_agency_inbox(self, topic: str) -> bool:
        prefix = f"{self.topics.prefix}agency."
        return topic.startswith(prefix) and topic.endswith(".in")
