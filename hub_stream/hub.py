"""The hub: decodes each input record, runs its flow, and collects what it must write.

Reading top to bottom: :meth:`Hub.handle` takes a batch; :meth:`Hub._one` decides what a
record is (registry event, operator command, a message from an agency);
the flows in :mod:`.registry_sync`, :mod:`.enrolment`, :mod:`.exchange` and
:mod:`.rotation` do the work; a
:class:`.Refusal` becomes a typed error to the sender; bytes that are not a message go to
the dead-letter topic. Nothing a sender does can stop the batch.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from renkei.auditchain import AuditSigner, load_or_create_signer
from renkei.crypto import KeyRing, LinkCodes, SigningKey
from renkei.envelope import sign_message, verify_message
from renkei.errors import DecodeError, SignatureError
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import (
    AttributeRequest,
    AuditStep,
    DeadLetter,
    DeenrolmentRequest,
    EnrolmentRequest,
    ErrorCode,
    Header,
    HubError,
    Message,
    ProviderResponse,
    RegistryEvent,
)

from . import enrolment, exchange, registry_sync, rotation
from .audit import AuditTrail
from .checkpoints import ChainHead, Checkpointer
from .control import control_topic
from .directory import Directory
from .ids import derive_id
from .matching import PersonIndex
from .outputs import Output
from .records import Holding, KeyStateRecord, Pending, PersonState
from .refusals import Refusal
from .settings import HubSettings
from .state import Table

__all__ = ["Hub"]

log = logging.getLogger(__name__)


class Hub:
    """Everything one worker knows, and the batch handler the pipeline drives.

    :param topics: topic names (with the deployment's prefix).
    :param keyring: link-code, audit and ID-code keys from the master secret.
    :param hub_key: the hub's signing key.
    :param settings: worker settings.
    :param audit_signer: signs audit checkpoints; by default the key in
        ``settings.key_dir`` (created there if missing).
    """

    def __init__(
        self,
        topics: Topics,
        keyring: KeyRing,
        hub_key: SigningKey,
        settings: HubSettings,
        audit_signer: AuditSigner | None = None,
    ) -> None:
        self.topics = topics
        self.keyring = keyring
        self.links = LinkCodes(keyring)
        self.hub_key = hub_key
        self.settings = settings
        self.codec = Codec()
        self.directory = Directory()
        self.index = PersonIndex()
        self.metrics: Counter[str] = Counter()
        self.persons: Table[PersonState] = Table(
            topics.state("persons"), PersonState.to_bytes, PersonState.from_bytes,
            self._person_changed,
        )  # fmt: skip
        self.holdings: Table[Holding] = Table(
            topics.state("holdings"), Holding.to_bytes, Holding.from_bytes, self._holding_changed
        )
        self.pending: Table[Pending] = Table(
            topics.state("pending"), Pending.to_bytes, Pending.from_bytes, self._pending_changed
        )
        self.chain: Table[ChainHead] = Table(
            topics.state("audit-chain"), ChainHead.to_bytes, ChainHead.from_bytes
        )
        checkpointer = Checkpointer(
            topics.audit, topics.partitions,
            audit_signer or load_or_create_signer(settings.key_dir), self.codec,
            settings.audit_checkpoint_records, settings.audit_checkpoint_ms,
        )  # fmt: skip
        withheld = [s.strip() for s in settings.audit_withheld_scenarios.split(",") if s.strip()]
        self.audit = AuditTrail(
            topics.audit, topics.partitions, self.codec, self.chain, checkpointer, withheld
        )
        self.keys: Table[KeyStateRecord] = Table(
            topics.state("keys"), KeyStateRecord.to_bytes, KeyStateRecord.from_bytes,
            self._keys_changed,
        )  # fmt: skip
        if isinstance(keyring, rotation.StagedKeyRing):
            keyring.follow(self.keys)  # a rotation staged in a batch applies to its rest
        self.control_topic = control_topic(topics)
        self.holders: dict[str, set[str]] = {}  # audit key → agencies holding the person
        self.by_id_code: dict[str, str] = {}  # id code hex → resident code
        self._deadlines: list[tuple[int, str]] = []

    # -- the pipeline's interface ------------------------------------------------------

    @property
    def tables(self) -> list[Table[Any]]:
        return [self.persons, self.holdings, self.pending, self.chain, self.keys]

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        outputs: list[Output] = []
        for record in records:
            self.audit.begin()
            try:
                outputs += self._one(record)
            except Exception as exc:
                # A defect of ours must not stop everyone else's traffic: park the input.
                log.exception("unexpected error on %s/%s", record.topic, record.offset)
                self.audit.abort()  # its audit records are dropped with its outputs
                outputs += self._dead_letter(record, ErrorCode.INTERNAL, repr(exc))
        outputs += self.audit.checkpoints(int(time.time() * 1000))
        for table in self.tables:
            outputs += table.changes()
        return outputs

    def tick(self, now_ms: int) -> list[Output]:
        """Time out forwarded requests whose deadline has passed."""
        outputs: list[Output] = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            _, hub_request_id = heapq.heappop(self._deadlines)
            pending = self.pending.get(hub_request_id)
            if pending is not None and pending.deadline_ms <= now_ms:
                outputs += exchange.time_out(self, hub_request_id, pending)
        outputs += self.audit.checkpoints(now_ms)
        if outputs:
            for table in self.tables:
                outputs += table.changes()
        return outputs

    def commit(self) -> None:
        for table in self.tables:
            table.commit()

    def rollback(self) -> None:
        for table in self.tables:
            table.rollback()
        # A rolled-back pending put may have pushed a deadline; the heap tolerates that:
        # tick() checks the table before acting.

    # -- one record --------------------------------------------------------------------

    def _one(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        topic = record.topic
        if topic == self.control_topic:
            return rotation.handle_command(self, record)
        if record.value is None:
            return []
        try:
            message = self.codec.decode(record.value)
        except DecodeError as exc:
            self.metrics["dead_lettered"] += 1
            return self._dead_letter(record, ErrorCode.MALFORMED_MESSAGE, str(exc))
        if topic == self.topics.registry_events:
            if not isinstance(message, RegistryEvent):
                return self._dead_letter(record, ErrorCode.MALFORMED_MESSAGE, "not a RegistryEvent")
            return registry_sync.apply(self, message)
        agency = self.topics.agency_of(topic)
        try:
            self._authenticate(agency, message)
            return self._dispatch(agency, message)
        except Refusal as refusal:
            return self.refuse(agency, message, refusal)

    def _dispatch(self, agency: str, message: Message) -> list[Output]:
        if isinstance(message, AttributeRequest):
            return exchange.request(self, agency, message)
        if isinstance(message, ProviderResponse):
            return exchange.respond(self, agency, message)
        if isinstance(message, EnrolmentRequest):
            return enrolment.enrol(self, agency, message)
        if isinstance(message, DeenrolmentRequest):
            return enrolment.deenrol(self, agency, message)
        raise Refusal(
            ErrorCode.MALFORMED_MESSAGE,
            f"{type(message).__name__} is not accepted on an agency's .out topic",
        )

    def _authenticate(self, agency: str, message: Message) -> None:
        entry = self.directory.agency(agency)
        if entry is None:
            raise Refusal(ErrorCode.UNKNOWN_AGENCY, f"agency {agency} is not in the directory")
        if message.header.sender != agency:
            raise Refusal(
                ErrorCode.BAD_SIGNATURE,
                f"sender {message.header.sender!r} wrote to agency {agency}'s topic",
            )
        if self.settings.signatures == "strict":
            try:
                verify_message(message, entry.signing_public_key, self.codec)
            except SignatureError as exc:
                raise Refusal(ErrorCode.BAD_SIGNATURE, str(exc)) from exc

    # -- answers -----------------------------------------------------------------------

    def send(self, topic: str, key: str | None, message: Message) -> Output:
        """Encode (and in strict mode sign) one outbound message."""
        if self.settings.signatures == "strict":
            message = sign_message(message, self.hub_key, self.codec)
        return Output(topic, key.encode() if key is not None else None, self.codec.encode(message))

    def refuse(self, agency: str, message: Message, refusal: Refusal) -> list[Output]:
        """A typed error to the sender, and an audit record with the same code."""
        self.metrics[f"refused.{refusal.code}"] += 1
        request_id = getattr(message, "request_id", None)
        key = getattr(message, "requester_link_code", None) or getattr(message, "link_code", None)
        cause = message.header.message_id
        error = HubError(
            header=Header.new("hub", cause, message_id=derive_id("refusal", cause)),
            code=refusal.code,
            detail=refusal.detail,
            request_id=request_id,
            retriable=refusal.retriable,
        )
        audit = self.audit.record(
            AuditStep.REFUSED,
            cause=cause,
            actor=agency,
            audit_key=refusal.audit_key,
            requester=agency,
            provider=getattr(message, "provider", None),
            scenario_id=getattr(message, "scenario_id", None),
            items=getattr(message, "items", ()),
            request_id=request_id,
            error_code=refusal.code,
        )
        if self.directory.agency(agency) is None:
            return [audit]  # no such agency: there is no topic of theirs to answer on
        return [self.send(self.topics.agency_in(agency), key, error), audit]

    def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], code: ErrorCode, detail: str
    ) -> list[Output]:
        """Park bytes we cannot handle, tell the sending agency, and audit it."""
        cause = derive_id("dlq", record.topic, str(record.partition), str(record.offset))
        letter = DeadLetter(
            header=Header.new("hub", message_id=cause),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            reason=code,
            detail=detail[:1000],
            key=record.key,
            value=record.value or b"",
        )
        outputs = [Output(self.topics.deadletter, record.key, self.codec.encode(letter))]
        actor = "registry"
        if record.topic != self.topics.registry_events:
            actor = self.topics.agency_of(record.topic)
            if self.directory.agency(actor) is not None:
                error = HubError(
                    header=Header.new("hub", message_id=derive_id("dlq-error", cause)),
                    code=code,
                    detail=f"{record.topic}@{record.partition}:{record.offset}: {detail[:500]}",
                    request_id=None,
                    retriable=False,
                )
                outputs.append(self.send(self.topics.agency_in(actor), None, error))
        outputs.append(
            self.audit.record(AuditStep.DEAD_LETTERED, cause=cause, actor=actor, error_code=code)
        )
        return outputs

    # -- derived indexes follow the committed tables -----------------------------------

    def _person_changed(
        self, resident_code: str, old: PersonState | None, new: PersonState | None
    ) -> None:
        if new is None:
            if old is not None:
                self.index.remove(bytes.fromhex(old.id_code))
                self.by_id_code.pop(old.id_code, None)
            return
        self.by_id_code[new.id_code] = resident_code
        person_id = bytes.fromhex(new.id_code)
        if person_id in self.index:
            self.index.update(person_id, new.basic4, new.my_number)
        else:
            self.index.add(person_id, new.basic4, new.my_number)

    def _holding_changed(self, key: str, old: Holding | None, new: Holding | None) -> None:
        audit_key, agency = key.split("|", 1)
        if new is None:
            self.holders.get(audit_key, set()).discard(agency)
        else:
            self.holders.setdefault(audit_key, set()).add(agency)

    def _keys_changed(
        self, agency: str, old: KeyStateRecord | None, new: KeyStateRecord | None
    ) -> None:
        if new is not None:
            self.keyring.set_state(agency, new.state)

    def _pending_changed(self, key: str, old: Pending | None, new: Pending | None) -> None:
        if new is not None:
            heapq.heappush(self._deadlines, (new.deadline_ms, key))

    def now(self) -> datetime:
        return datetime.now(UTC)
