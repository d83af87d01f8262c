"""What a flow sees: :class:`FlowContext`, everything it may read and how it emits.

The flows (:mod:`.registry_sync`, :mod:`.fanout`, :mod:`.enrolment`, :mod:`.exchange`,
:mod:`.rotation`) are functions ``flow(ctx, …inputs) -> list[Output]``. They read the
directory, the tables and the derived indexes; they stage state changes in the tables;
they return what must be written — messages built with :meth:`FlowContext.send` and
audit records from :attr:`FlowContext.audit`. The :class:`~.hub.Hub` builds the context
and owns the batch around the flows (order, savepoints, commit, rollback); no flow
imports the hub, the loop or the worker (an import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from renkei.crypto import KeyRing, LinkCodes, SigningKey
from renkei.envelope import sign_message
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import Message

from .audit import AuditTrail
from .deadletters import LetterSealer
from .directory import Directory
from .indexes import DerivedIndexes
from .outputs import Output
from .preverify import Signing
from .records import Holding, KeyStateRecord, Pending, PersonState
from .replays import ReplayMemory
from .state import Table
from .trust import PinnedRoots

__all__ = ["FlowContext"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowContext:
    """Everything a flow reads, and the helpers through which it emits.

    :param topics: topic names, for the agencies' ``.in`` topics and the dead letters.
    :param directory: agencies, their keys and entitlements, and the scenario table.
    :param codec: encodes messages (and verifies the registry's and operators' bytes).
    :param links: mints and opens link codes.
    :param keyring: the key ring behind ``links`` (audit keys, ID codes, key states).
    :param strict: sign every outbound message (``RENKEI_HUB_SIGNATURES=strict``) and
        verify the agencies' signatures (the registry's and the operators' are verified
        in every mode, against ``roots``).
    :param roots: the operators' and the registry's pinned public keys (:mod:`.trust`).
    :param max_deadline_ms: the furthest deadline a request may set.
    :param persons: resident code → :class:`.PersonState` (staged).
    :param holdings: ``<audit key>|<agency>`` → :class:`.Holding` (staged).
    :param pending: hub request id → :class:`.Pending` (staged).
    :param keys: agency id → :class:`.KeyStateRecord` (staged).
    :param indexes: derived from ``persons`` and ``holdings``, staged changes included.
    :param audit: builds the audit records a flow returns.
    :param metrics: counters a flow increments.
    :param hub_key: the hub's signing key (strict mode).
    :param replays: the message ids handled within the replay window (:mod:`.replays`).
    :param letters: seals a dead letter's input to the operators (:mod:`.deadletters`).
    :param signing: strict mode: while a batch is open, :meth:`emit` leaves its signature to
        the pool (:class:`.preverify.Signing`) and the hub splices it in at the batch's end.
    :param clock: the current time (UTC).
    """

    topics: Topics
    directory: Directory
    codec: Codec
    links: LinkCodes
    keyring: KeyRing
    strict: bool
    roots: PinnedRoots
    max_deadline_ms: int
    persons: Table[PersonState]
    holdings: Table[Holding]
    pending: Table[Pending]
    keys: Table[KeyStateRecord]
    indexes: DerivedIndexes
    audit: AuditTrail
    metrics: Counter[str]
    hub_key: SigningKey
    replays: ReplayMemory
    letters: LetterSealer
    signing: Signing | None = None
    clock: Callable[[], datetime] = field(default=_utc_now)
    _inboxes: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def inbox(self, agency: str) -> str:
        """``topics.agency_in(agency)``, remembered: the flows name a few agencies' topics
        per message, and each name is a checked id formatted into a string."""
        topic = self._inboxes.get(agency)
        if topic is None:
            topic = self._inboxes[agency] = self.topics.agency_in(agency)
        return topic

    def now(self) -> datetime:
        """The current time, as the flows see it."""
        return self.clock()

    def send(self, topic: str, key: str | None, message: Message) -> Output:
        """Encode (and in strict mode sign) one outbound message."""
        if self.strict:
            message = sign_message(message, self.hub_key, self.codec)
        return Output(topic, key.encode() if key is not None else None, self.codec.encode(message))

    def emit(
        self,
        topic: str,
        key: str | None,
        model: type[Message],
        *,
        message_id: str,
        correlation_id: str | None = None,
        **fields: Any,
    ) -> Output:
        """Encode (and in strict mode sign) one outbound message from its field values.

        The same bytes as :meth:`send` of the model with a ``Header.new("hub", …)``
        header, without building the model: the codec's compiled writer
        (:mod:`schemas.compiled`) writes the values, checking the contract's limits.
        """
        writer = self.codec.writer(model)
        header = {"message_id": message_id, "correlation_id": correlation_id, "sender": "hub",
                  "sent_at": time.time_ns() // 1_000_000}  # fmt: skip
        head, tail = writer.write(header, **fields)
        raw_key = key.encode() if key is not None else None
        if not self.strict:
            return Output(topic, raw_key, writer.join(head, tail))
        if self.signing is not None and self.signing.active:
            return self.signing.later(topic, raw_key, head, tail)  # signed in the pool
        return Output(
            topic, raw_key, writer.join(head, tail, self.hub_key.sign(head + b"\x00" + tail))
        )

    def sign(self, payload: bytes) -> bytes:
        """The hub's signature over spliced bytes (:mod:`.splice`)."""
        return self.hub_key.sign(payload)
