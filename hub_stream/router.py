"""Stage 1 of the partitioned hub: place every input with the bucket of its person.

The :class:`Router` is the batch handler of a :class:`~.pipeline.TransactionalLoop` over
the single hub's inputs (every ``agency.*.out``, ``registry.events``, ``hub.control``,
``hub.directory``) in a consumer group of its own. It decides only *where* a record goes
and writes it, unchanged, to ``hub.route[p]`` (:class:`~.buckets.Routed`) in the
transaction that commits its input offsets. Everything the hub *says* — answers,
refusals, audit records, dead letters — is said by the task of the bucket
(:mod:`.tasks`), exactly as the single hub says it: the router writes no audit record, so
every ``hub.audit[p]`` keeps one writer and one chain.

How a record is placed:

* ``AttributeRequest``: the requester's link code; ``ProviderResponse``: the provider's
  (echoed from the forwarded request, so the answer meets its pending row);
  ``DeenrolmentRequest``: its link code. The code is opened under the version it claims
  (:meth:`~renkei.crypto.LinkCodes.open_claimed`): a router that has not yet seen a
  rotation still places a new-version code; the task applies the key state.
* ``EnrolmentRequest``: the router's person index (every person, :class:`Persons`)
  resolves it; a link goes to the person's bucket, and the match travels with the record
  so that the task can confirm it against its own rows (:mod:`.tasks`).
* ``RegistryEvent``: a registration by the ID code its event id gives; any other event by
  the resident code's person.
* Signed control commands go to every bucket (each remaps the holders it owns), each copy
  with the bucket's share (:class:`~.control.CommandShare`): bucket 0's copy alone says a
  refusal; an ``EnrolLinked`` row is handled by the bucket of the person its resident
  code names in the router's view, a row naming nobody the router knows by bucket 0
  (which answers ``NO_MATCH`` unless it has the person). An unsigned or unparsable
  command goes to one bucket, which refuses it once.
* ``hub.directory``: only what the operators did not sign (the task parks it); the rest
  each worker applies itself.
* Anything the router cannot place (undecodable, too large, a code that does not open, an
  enrolment that links nobody) goes to a fixed bucket chosen from its sender and message
  id (:func:`~.buckets.fallback_bucket`), where it gets the single hub's typed refusal.

Signatures: the router checks the registry's signature before it learns a person from a
registration (a forged one must not steer enrolments) and the operators' on control
commands (an unsigned one is refused once, not in every bucket); agencies' signatures
(``strict``) are checked by the task, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import ConsumerRecord

from renkei.crypto import KeyRing, LinkCodes, audit_key, new_id_code
from renkei.errors import DecodeError, SignatureError
from renkei.topics import Topics
from schemas import limits
from schemas.codec import Codec
from schemas.models import (
    AttributeRequest,
    DeenrolmentRequest,
    EnrolmentRequest,
    EventAction,
    EventKind,
    ProviderResponse,
    RegistryEvent,
)

from .buckets import Routed, bucket_of, fallback_bucket, route_topic
from .control import CommandError, CommandShare, EnrolLinked, parse_command
from .hub import in_time_order
from .matching import MatchResult
from .outputs import Output
from .persons_view import Persons
from .trust import REGISTRY_ID, PinnedRoots, Untrusted, admit_entry, check_signed

__all__ = ["SPEAKING_BUCKET", "Router"]

SPEAKING_BUCKET = 0
"""The bucket whose copy of a signed command says its refusal, and that handles the
rows of an ``EnrolLinked`` whose person the router does not know."""

log = logging.getLogger(__name__)


class Router:
    """Places each input with its bucket; the batch handler of stage 1.

    :param topics: topic names; ``topics.partitions`` is the number of buckets.
    :param keyring: opens link codes, derives ID codes and audit keys.
    :param roots: the pinned operators' and registry's keys.
    :param persons: every person, as the router knows them (:class:`.Persons`).
    """

    def __init__(
        self, topics: Topics, keyring: KeyRing, roots: PinnedRoots, persons: Persons
    ) -> None:
        self.topics = topics
        self.buckets = topics.partitions
        self.route = route_topic(topics)
        self.keyring = keyring
        self.links = LinkCodes(keyring)
        self.roots = roots
        self.persons = persons
        self.codec = Codec()
        self.routed = [0] * self.buckets
        """Records written to each bucket since start (a broadcast counts in each)."""

    # -- the pipeline's interface ------------------------------------------------------

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        self.persons.catch_up()  # nothing is staged between batches
        outputs: list[Output] = []
        # The single hub's order: a registration produced before an enrolment is placed
        # (and learnt) first, whichever partition the poll listed first.
        for record in in_time_order(records, first_on_tie=self.topics.registry_events):
            try:
                outputs += self.place(record)
            except Exception:  # a defect of ours: the task refuses it as INTERNAL
                log.exception(
                    "cannot place %s[%d]@%d", record.topic, record.partition, record.offset
                )
                outputs.append(self._fallback(record, record.topic, str(record.offset)))
        return outputs

    def tick(self, now_ms: int) -> list[Output]:
        return []  # deadlines are the tasks'

    def commit(self) -> None:
        self.persons.commit()

    def rollback(self) -> None:
        self.persons.rollback()

    # -- one record --------------------------------------------------------------------

    def place(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        """The routed records of one input (none for what no task needs to see)."""
        topic, value = record.topic, record.value
        key_size = len(record.key) if record.key is not None else 0
        if key_size > limits.KEY_BYTES or len(value or b"") > limits.MESSAGE_BYTES:
            # Not read here either; one byte over each limit is enough for the task to
            # refuse it as the single hub does, and keeps hub.route's records small.
            kept = Routed.of(record)
            kept = Routed(
                kept.topic, kept.partition, kept.offset, kept.timestamp,
                None if record.key is None else record.key[: limits.KEY_BYTES + 1],
                None if value is None else value[: limits.MESSAGE_BYTES + 1],
            )  # fmt: skip
            where = fallback_bucket(self.buckets, topic, str(record.partition), str(record.offset))
            return [self._write(where, kept)]
        if topic == self.topics.control:
            return self._command(record)
        if value is None:
            return []  # a tombstone: the single hub ignores it too
        if topic == self.topics.directory:
            try:
                admit_entry(self.codec, self.roots, record.key, value)
            except Untrusted:
                return [self._fallback(record, topic, str(record.offset))]
            return []  # applied by every worker's directory feed
        try:
            message = self.codec.decode(value)
        except DecodeError:
            return [self._fallback(record, topic, str(record.partition), str(record.offset))]
        if topic == self.topics.registry_events:
            if not isinstance(message, RegistryEvent):
                return [self._fallback(record, topic, str(record.partition), str(record.offset))]
            return [self._registry_event(record, message)]
        agency = self.topics.agency_of(topic)
        sender_id = (agency, message.header.message_id)
        code: str | None = None
        if isinstance(message, AttributeRequest):
            code = message.requester_link_code
        elif isinstance(message, ProviderResponse):
            code = message.provider_link_code
        elif isinstance(message, DeenrolmentRequest):
            code = message.link_code
        elif isinstance(message, EnrolmentRequest):
            return [self._enrolment(record, agency, message)]
        if code is not None:
            try:
                id_code = self.links.open_claimed(agency, code)
            except Exception:  # refused by the task: INVALID_LINK_CODE
                return [self._fallback(record, *sender_id)]
            return [self._write(self._bucket(id_code), Routed.of(record))]
        return [self._fallback(record, *sender_id)]  # not accepted on .out: refused there

    def _enrolment(
        self, record: ConsumerRecord[bytes, bytes], agency: str, request: EnrolmentRequest
    ) -> Output:
        match: MatchResult | None = None
        if request.my_number is not None or request.basic4 is not None:
            match = self.persons.indexes.resolve(request.my_number, request.basic4)
        if match is not None and match.outcome == "LINKED" and match.person_id is not None:
            return self._write(self._bucket(match.person_id), Routed.of(record, match))
        # Nobody, or several people in several buckets: the task answers with this match.
        where = fallback_bucket(self.buckets, agency, request.header.message_id)
        return self._write(where, Routed.of(record, match))

    def _registry_event(self, record: ConsumerRecord[bytes, bytes], event: RegistryEvent) -> Output:
        if event.kind is EventKind.REGISTERED and event.action is EventAction.ORIGINAL:
            id_code = new_id_code(self.keyring, event.event_id)
            assert record.value is not None
            try:
                check_signed(event, record.value, REGISTRY_ID, self.roots.registry, self.codec)
            except Untrusted:
                pass  # placed, and refused there, but never learnt
            else:
                self.persons.registered(event, id_code)
            return self._write(self._bucket(id_code), Routed.of(record))
        person = self.persons.table.get(event.resident_code)
        if person is None:  # the task answers NOT_ENROLLED, as the single hub does
            where = fallback_bucket(self.buckets, REGISTRY_ID, event.resident_code)
            return self._write(where, Routed.of(record))
        return self._write(self._bucket(bytes.fromhex(person.id_code)), Routed.of(record))

    def _command(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        try:
            command = parse_command(record.value)
            command.verify(self.roots.operator)
        except (CommandError, SignatureError):
            return [self._fallback(record, record.topic, str(record.offset))]
        rows: list[set[int]] | None = None
        if isinstance(command, EnrolLinked):
            # Each row once, in the bucket of its person: the others do not have the
            # person and would answer NO_MATCH.
            rows = [set() for _ in range(self.buckets)]
            for i, row in enumerate(command.rows):
                person = self.persons.table.get(row.resident_code)
                where = (
                    self._bucket(bytes.fromhex(person.id_code))
                    if person is not None
                    else SPEAKING_BUCKET
                )
                rows[where].add(i)
        # Every bucket gets a copy, even without rows: each remembers the command id, so
        # a replay is refused wherever the router's view would place its rows then.
        return [
            self._write(
                p,
                Routed.of(
                    record,
                    share=CommandShare(
                        p == SPEAKING_BUCKET, frozenset(rows[p]) if rows is not None else None
                    ),
                ),
            )
            for p in range(self.buckets)
        ]

    # -- writing -----------------------------------------------------------------------

    def _bucket(self, id_code: bytes) -> int:
        return bucket_of(audit_key(self.keyring, id_code), self.buckets)

    def _fallback(self, record: ConsumerRecord[bytes, bytes], *parts: str) -> Output:
        return self._write(fallback_bucket(self.buckets, *parts), Routed.of(record))

    def _write(self, bucket: int, routed: Routed) -> Output:
        self.routed[bucket] += 1
        return Output(self.route, routed.key, routed.to_bytes(), bucket)
