"""The hub: decodes each input record, runs its flow, and collects what it must write.

Reading top to bottom: :meth:`Hub.handle` takes a batch in the order its records were
produced; :meth:`Hub._one` decides what a record is (registry event, operator command, a
message from an agency); the flows in :mod:`.registry_sync`, :mod:`.enrolment`,
:mod:`.exchange` and :mod:`.rotation` do the work, each a function of the
:class:`~.context.FlowContext` and its input that returns what to write; a
:class:`.Refusal` becomes a typed error to the sender; bytes that are not a message go to
the dead-letter topic. Nothing a sender does can stop the batch, and a record that fails
half-way takes everything it staged with it (a savepoint per record on every table).

What the hub trusts is pinned in its configuration (:mod:`.trust`): registry events must
carry the registry's signature, control commands and directory entries the operators',
in every signature mode. A message the hub has already handled is refused as a
``DUPLICATE`` (:mod:`.replays`). Nothing logged or parked quotes an input (:mod:`.redact`).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from aiokafka import ConsumerRecord

from renkei.auditchain import AuditSigner, load_or_create_signer
from renkei.crypto import KeyRing, LinkCodes, SigningKey, sodium
from renkei.crypto.sodium import SodiumSigningKey
from renkei.envelope import verify_bytes
from renkei.errors import DecodeError, SignatureError
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import (
    AttributeRequest,
    DeenrolmentRequest,
    EnrolmentRequest,
    ErrorCode,
    Message,
    ProviderResponse,
    RegistryEvent,
)

from . import enrolment, exchange, oversize, refusals, registry_sync, rotation
from .audit import AuditTrail
from .checkpoints import ChainHead, Checkpointer
from .context import FlowContext
from .deadletters import LetterSealer
from .deadlines import Deadlines
from .directory import Directory
from .indexes import DerivedIndexes
from .outputs import Output
from .preverify import Ahead, PreVerifier, Signing
from .records import Holding, KeyStateRecord, Pending, PersonState
from .redact import describe_decode_error, describe_exception, withheld_traceback
from .refusals import Refusal
from .replays import ReplayMemory
from .sealed_state import persons_table
from .settings import HubSettings
from .state import StagedState, Table
from .store import open_stores
from .treeheads import TreeHeads
from .trust import REGISTRY_ID, PinnedRoots, Untrusted, admit_entry, check_signed, load_roots

__all__ = ["Hub", "in_time_order"]

log = logging.getLogger(__name__)


def in_time_order(
    records: Sequence[ConsumerRecord[bytes, bytes]], first_on_tie: str
) -> Sequence[ConsumerRecord[bytes, bytes]]:
    """The batch merged by timestamp, each partition's records in their own order.

    Kafka orders records within a partition only, and a poll lists partitions in no
    particular order: a registration written before an enrolment, on another topic, may
    be listed after it. Merging by the producers' timestamps (``first_on_tie``'s records
    first on a tie) handles them as they were produced, the way a Kafka Streams task
    picks the partition with the oldest head.
    """
    runs: dict[tuple[str, int], list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        runs.setdefault((record.topic, record.partition), []).append(record)
    if len(runs) < 2:
        return records
    return list(heapq.merge(*runs.values(), key=lambda r: (r.timestamp, r.topic != first_on_tie)))


class Hub:
    """Everything one worker knows, and the batch handler the pipeline drives.

    :param topics: topic names (with the deployment's prefix).
    :param keyring: link-code, audit and ID-code keys from the master secret.
    :param hub_key: the hub's signing key.
    :param settings: worker settings.
    :param audit_signer: signs audit checkpoints and tree heads; by default the key in
        ``settings.key_dir`` (created there if missing).
    :param roots: the operators' and the registry's public keys; by default those the
        settings name (:func:`.trust.load_roots`).
    :param scope: the name of this hub's state store (``RENKEI_HUB_STORE``): ``single``,
        or a bucket's.
    """

    def __init__(
        self,
        topics: Topics,
        keyring: KeyRing,
        hub_key: SigningKey,
        settings: HubSettings,
        audit_signer: AuditSigner | None = None,
        roots: PinnedRoots | None = None,
        scope: str = "single",
    ) -> None:
        self.roots = roots if roots is not None else load_roots(settings)
        self.topics = topics
        self.keyring = keyring
        self.links = LinkCodes(keyring)
        self.settings = settings
        self.codec = Codec()
        strict = settings.signatures == "strict"
        # The same key and signatures, through libsodium (renkei.crypto.sodium): faster.
        hub_key = SodiumSigningKey.of(hub_key)
        self._preverify = PreVerifier(self.codec) if strict else None
        self._ahead = Ahead()
        self._marks: list[Callable[[], int]] | None = None  # the tables' savepoint methods
        self._agencies: dict[str, str] = {}  # .out topic → agency id
        self._signing = Signing() if strict else None  # strict: outbound signed in the pool
        self.metrics: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()
        """Input records handled, by message type (the metrics' inputs; :mod:`.metrics`)."""
        self.on_answers: Callable[[list[int]], None] | None = None
        """Called at each commit with the Kafka timestamps (ms) of the answers the batch
        routed back (the metrics' exchange time)."""
        self._answers: list[int] = []  # those of the batch being handled
        self._sealed_answers: deque[list[int]] = deque()  # those of the batches in flight
        # Derived indexes follow the tables' staged changes (and their undoing).
        self.indexes = DerivedIndexes()
        self.deadlines = Deadlines()
        # The committed rows: dicts, or an embedded RocksDB rebuilt from the changelog.
        self.stores = store = open_stores(settings, scope)
        # Person rows hold a My Number and a basic-4: sealed on Kafka (.sealed_state).
        self.persons: Table[PersonState] = persons_table(
            keyring, topics.state("persons"), self.indexes.person_changed, store
        )
        self.holdings: Table[Holding] = Table(
            topics.state("holdings"), Holding.to_bytes, Holding.from_bytes,
            self.indexes.holding_changed, store,
        )  # fmt: skip
        self.pending: Table[Pending] = Table(
            topics.state("pending"), Pending.to_bytes, Pending.from_bytes,
            self.deadlines.changed, store,
        )  # fmt: skip
        self.chain: Table[ChainHead] = Table(
            topics.state("audit-chain"), ChainHead.to_bytes, ChainHead.from_bytes, None, store
        )
        signer = audit_signer or load_or_create_signer(settings.key_dir)
        checkpointer = Checkpointer(
            topics.audit, topics.partitions, signer, self.codec,
            settings.audit_checkpoint_records, settings.audit_checkpoint_ms,
        )  # fmt: skip
        withheld = [s.strip() for s in settings.audit_withheld_scenarios.split(",") if s.strip()]
        self.audit = AuditTrail(
            topics.audit, topics.partitions, self.codec, self.chain, checkpointer, withheld,
            TreeHeads(topics.audit, topics.audit_heads, signer, self.codec),
        )  # fmt: skip
        staged_keys = isinstance(keyring, rotation.StagedKeyRing)
        self.keys: Table[KeyStateRecord] = Table(
            topics.state("keys"), KeyStateRecord.to_bytes, KeyStateRecord.from_bytes,
            None if staged_keys else self._key_state_restored, store,
        )  # fmt: skip
        if isinstance(keyring, rotation.StagedKeyRing):
            keyring.follow(self.keys)  # a rotation staged in a batch applies to its rest
        self.replays = ReplayMemory(
            topics.state("seen"), settings.max_deadline_ms + settings.replay_margin_ms
        )
        self.context = FlowContext(  # what every flow sees
            topics=topics, directory=Directory(), codec=self.codec, links=self.links,
            keyring=keyring, strict=strict, roots=self.roots,
            max_deadline_ms=settings.max_deadline_ms, persons=self.persons,
            holdings=self.holdings, pending=self.pending, keys=self.keys, indexes=self.indexes,
            audit=self.audit, metrics=self.metrics, hub_key=hub_key, replays=self.replays,
            letters=LetterSealer(self.roots.operator_sealing), signing=self._signing,
        )  # fmt: skip

    @property
    def directory(self) -> Directory:
        """Agencies and scenarios, as the control plane applied them."""
        return self.context.directory

    @directory.setter
    def directory(self, directory: Directory) -> None:
        self.context = dataclasses.replace(self.context, directory=directory)

    # -- the pipeline's interface ------------------------------------------------------

    @property
    def tables(self) -> list[StagedState]:
        return [self.persons, self.holdings, self.pending, self.chain, self.keys, self.replays]

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        outputs: list[Output] = []
        ordered = in_time_order(records, first_on_tie=self.topics.registry_events)
        if self._preverify is not None:  # strict: the batch's signatures, checked ahead
            self._ahead = self._preverify.start(ordered, self._agency_key)
        if self._signing is not None:  # strict: and the hub's own made beside it
            self._signing.begin(self.context.hub_key.sign, len(ordered))
        try:
            for record in ordered:
                outputs += self._guarded(record)
            if self._signing is not None:
                outputs = self._signing.finish(outputs)
        finally:
            self._ahead = Ahead()
            if self._signing is not None:
                self._signing.discard()
        outputs += self.audit.checkpoints(int(time.time() * 1000))
        for table in self.tables:
            outputs += table.changes()
        return outputs

    def tick(self, now_ms: int) -> list[Output]:
        """Time out forwarded requests whose deadline has passed."""
        outputs: list[Output] = []
        for hub_request_id in self.deadlines.due(now_ms):
            pending = self.pending.get(hub_request_id)
            if pending is None:
                continue
            marks = self._savepoint()
            try:
                outputs += exchange.time_out(self.context, hub_request_id, pending)
            except Exception:
                log.exception("unexpected error timing out %s; retrying later", hub_request_id)
                self._rollback_to(marks)
                self.deadlines.arm(hub_request_id, pending.deadline_ms)
        outputs += self.audit.checkpoints(now_ms)
        if self.replays.expire(now_ms) or outputs:
            for table in self.tables:
                outputs += table.changes()
        return outputs

    def close(self) -> None:
        """Let go of the state store (a RocksDB's directory goes: the changelog has it)."""
        if self.stores is not None:
            self.stores.close()

    def seal(self) -> None:
        """The batch is written: what is staged from now on is the next batch's."""
        for table in self.tables:
            table.seal()
        self._sealed_answers.append(self._answers)
        self._answers = []

    def commit(self) -> None:
        """The oldest batch in flight committed (the only one, without :meth:`seal`)."""
        for table in self.tables:
            table.commit()
        if self._sealed_answers:
            answers = self._sealed_answers.popleft()
        else:
            answers, self._answers = self._answers, []
        if answers and self.on_answers is not None:
            self.on_answers(answers)

    def rollback(self) -> None:
        """The oldest batch in flight aborted: forget it and every batch after it."""
        # The derived indexes and the deadlines follow the undoing, change by change.
        for table in self.tables:
            table.rollback()
        self._sealed_answers.clear()  # handled again, they are noted again
        self._answers = []

    def share_counters(
        self, metrics: Counter[str], inputs: Counter[str],
        on_answers: Callable[[list[int]], None] | None,
    ) -> None:  # fmt: skip
        """Count into the worker's counters: a bucket's hub lives only as long as the
        bucket stays, and a metric must not fall back when it goes (:mod:`.metrics`)."""
        self.metrics = metrics
        self.inputs = inputs
        self.on_answers = on_answers
        self.context = dataclasses.replace(self.context, metrics=metrics)

    # -- one record --------------------------------------------------------------------

    def _guarded(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        marks = self._savepoint()
        try:
            return self._one(record)
        except Exception as exc:
            # A defect of ours must not stop everyone else's traffic: undo what the record
            # staged (its audit chain moves included) and park it. The message of the
            # exception may quote the input, so neither the log nor the letter has it.
            what = describe_exception(exc)
            log.error(
                "unexpected %s on %s[%d]@%d:\n%s",
                what, record.topic, record.partition, record.offset, withheld_traceback(exc),
            )  # fmt: skip
            self._rollback_to(marks)
            return refusals.dead_letter(self.context, record, ErrorCode.INTERNAL, what)

    def _one(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        topic = record.topic
        if (too_large := oversize.refuse_oversize(self.context, record)) is not None:
            return too_large  # before anything reads it, whatever the topic
        if topic == self.topics.control:
            self.inputs["control"] += 1
            return rotation.handle_command(self.context, record)
        if record.value is None:
            return []
        if topic == self.topics.directory:
            self.inputs["directory"] += 1
            return self._directory_record(record)
        try:
            message = self.codec.decode(record.value)
        except DecodeError as exc:
            self.inputs["undecodable"] += 1
            self.metrics["dead_lettered"] += 1
            detail = describe_decode_error(exc)
            return refusals.dead_letter(self.context, record, ErrorCode.MALFORMED_MESSAGE, detail)
        self.inputs[type(message).__name__] += 1  # the class's own name: nothing allocated
        now_ms = int(self.context.now().timestamp() * 1000)
        if topic == self.topics.registry_events:
            if not isinstance(message, RegistryEvent):
                code, detail = ErrorCode.MALFORMED_MESSAGE, "not a RegistryEvent"
                return refusals.dead_letter(self.context, record, code, detail)
            try:
                check_signed(message, record.value, REGISTRY_ID, self.roots.registry, self.codec)
            except Untrusted as refused:
                return refusals.untrusted(self.context, record, REGISTRY_ID, refused)
            if not self.replays.first_time(REGISTRY_ID, message.header.message_id, now_ms):
                self.metrics["registry.duplicate"] += 1  # the registry sent it again
                return []
            return registry_sync.apply(self.context, message)
        agency = self._agencies.get(topic)
        if agency is None:  # an agency's .out topic: its id, remembered (a topic per agency)
            agency = self._agencies[topic] = self.topics.agency_of(topic)
        try:
            self._authenticate(agency, message, record.value)
            if not self.replays.first_time(agency, message.header.message_id, now_ms):
                return refusals.duplicate(self.context, agency, message, record)
            if isinstance(message, ProviderResponse):
                return self._answer(agency, message, record.timestamp)
            return self._dispatch(agency, message)
        except Refusal as refusal:
            return refusals.refuse(self.context, agency, message, refusal)

    def _directory_record(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        """A ``hub.directory`` record, as the loop reads it: refusals are written here.

        Each worker applies the directory itself (:mod:`.directory_feed`: at restore,
        then through the faust agent), so this only parks and audits — once, in the
        batch's transaction — what no worker will obey.
        """
        try:
            admit_entry(self.codec, self.roots, record.key, record.value)
        except Untrusted as refused:
            return refusals.untrusted(self.context, record, "operator", refused)
        return []

    def _dispatch(self, agency: str, message: Message) -> list[Output]:
        if isinstance(message, AttributeRequest):
            return exchange.request(self.context, agency, message)
        if isinstance(message, ProviderResponse):
            return exchange.respond(self.context, agency, message)
        if isinstance(message, EnrolmentRequest):
            return enrolment.enrol(self.context, agency, message)
        if isinstance(message, DeenrolmentRequest):
            return enrolment.deenrol(self.context, agency, message)
        raise Refusal(
            ErrorCode.MALFORMED_MESSAGE,
            f"{type(message).__name__} is not accepted on an agency's .out topic",
        )

    def _answer(self, provider: str, message: ProviderResponse, timestamp_ms: int) -> list[Output]:
        answered = self.metrics["answered"]
        outputs = exchange.respond(self.context, provider, message)
        if self.metrics["answered"] != answered:  # routed back, not late: time it at commit
            self._answers.append(timestamp_ms)
        return outputs

    def _authenticate(self, agency: str, message: Message, value: bytes) -> None:
        """Refuse ``message`` unless ``agency`` is known, wrote it, and (strict) signed
        ``value``, the bytes as they arrived: never a re-encoding, which would differ for
        a writer of another schema version."""
        entry = refusals.author_entry(self.directory, agency, message)
        if self.context.strict and not self._ahead.accepted(value, entry.signing_public_key):
            try:
                verify_bytes(value, entry.signing_public_key, self.codec, sodium.verify)
            except SignatureError as exc:
                raise Refusal(ErrorCode.BAD_SIGNATURE, str(exc)) from exc

    def _agency_key(self, topic: str) -> bytes | None:
        """The signing key of the agency whose ``.out`` topic this is, if it is one."""
        if topic in (self.topics.control, self.topics.directory, self.topics.registry_events):
            return None
        entry = self.directory.agency(self.topics.agency_of(topic))
        return entry.signing_public_key if entry is not None else None

    # -- savepoints --------------------------------------------------------------------

    def _savepoint(self) -> list[int]:
        return [savepoint() for savepoint in self._savepoints()]

    def _savepoints(self) -> list[Callable[[], int]]:
        # Every record takes one savepoint per table: their bound methods, made once.
        if self._marks is None:
            self._marks = [table.savepoint for table in self.tables]
        return self._marks

    def _rollback_to(self, marks: list[int]) -> None:
        for table, mark in zip(self.tables, marks, strict=True):
            table.rollback_to(mark)

    def _key_state_restored(
        self, agency: str, old: KeyStateRecord | None, new: KeyStateRecord | None
    ) -> None:
        # Only a StagedKeyRing rotates; a plain key ring just adopts restored states.
        if new is not None:
            self.keyring.set_state(agency, new.state)
