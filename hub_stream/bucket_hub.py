"""The hub of one bucket: the single hub's flows over one partition of its state.

:class:`BucketHub` is a :class:`~.hub.Hub` whose state is bucket *p*'s only, restored from
partition *p* of each ``hub.state.*`` topic, written back there (the hub's tables
partition by key; here every state record is placed in *p*), and whose audit records all
go to ``hub.audit[p]`` — one writer per chain. It reads ``hub.route[p]``: each record is
unwrapped into the input it carries (:class:`~.buckets.Routed`), so the single hub's
code handles it unchanged — decode, authenticate, replay check, flow, typed refusal.

Enrolments are the one decision taken with a wider view than the bucket's: the router's
index saw every person (a basic-4 shared by persons of two buckets is ``AMBIGUOUS``
there and would look unique here), so its match travels with the record and this hub
*confirms* it (:func:`confirm`): a link stands only if the bucket's own, fresher row of
the person links it too.

Signed commands reach every bucket, each copy with the bucket's share
(:class:`~.control.CommandShare`): the rows of an ``EnrolLinked`` whose persons the
bucket holds, and whether this copy says a refusal.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from aiokafka import ConsumerRecord

from renkei.auditchain import AuditSigner
from renkei.crypto import KeyRing, SigningKey
from renkei.errors import DecodeError
from renkei.topics import Topics
from schemas.models import EnrolmentRequest

from . import rotation
from .audit import AuditTrail
from .buckets import Routed
from .checkpoints import Checkpointer
from .control import CommandShare
from .directory import Directory
from .hub import Hub
from .matching import Basic4Like, MatchResult
from .outputs import Output
from .settings import HubSettings
from .treeheads import TreeHeads
from .trust import PinnedRoots

__all__ = ["BucketAudit", "BucketHub", "confirm"]

log = logging.getLogger(__name__)


def confirm(routed: MatchResult | None, local: MatchResult) -> MatchResult:
    """The answer to an enrolment from the router's match and the bucket's own.

    * No match from the router (a record routed before matches travelled): the bucket's.
    * The router found nobody, or several people: that stands — the bucket sees only its
      own persons and could mistake one of several for the only one.
    * The router linked person X: the bucket's rows of X are the freshest (a reissued
      number, a move); the link stands if they link X too, else the bucket's answer
      does, and a bucket that links someone else makes it ``AMBIGUOUS``.
    """
    if routed is None or routed.outcome != "LINKED":
        return routed if routed is not None else local
    if local.outcome != "LINKED":
        return local
    if local.person_id == routed.person_id:
        return local
    return MatchResult(
        "AMBIGUOUS", None, "the record matches more than one person; a person has to look"
    )


class BucketAudit(AuditTrail):
    """An audit trail that writes every record to its bucket's partition."""

    def __init__(self, bucket: int, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # AuditTrail's own
        self.bucket = bucket

    def partition_of(self, audit_key: str | None, actor: str) -> int:
        return self.bucket


class BucketHub(Hub):
    """The hub of bucket ``bucket``: a :class:`~.hub.Hub` over ``hub.route[bucket]``.

    :param bucket: the bucket (the partition of every hub-internal topic).
    :param directory: the worker's directory, shared by its buckets (the directory feed
        applies entries to it in place).
    :param topics, keyring, hub_key, settings, audit_signer, roots: as for :class:`.Hub`;
        ``keyring`` must be the bucket's own (it follows the bucket's key table).
    """

    def __init__(
        self,
        bucket: int,
        directory: Directory,
        topics: Topics,
        keyring: KeyRing,
        hub_key: SigningKey,
        settings: HubSettings,
        audit_signer: AuditSigner,
        roots: PinnedRoots,
    ) -> None:
        super().__init__(
            topics, keyring, hub_key, settings, audit_signer, roots, scope=f"bucket-{bucket}"
        )
        self.bucket = bucket
        checkpointer = Checkpointer(
            topics.audit, topics.partitions, audit_signer, self.codec,
            settings.audit_checkpoint_records, settings.audit_checkpoint_ms,
        )  # fmt: skip
        withheld = [s.strip() for s in settings.audit_withheld_scenarios.split(",") if s.strip()]
        self.audit = BucketAudit(
            bucket, topics.audit, topics.partitions, self.codec, self.chain, checkpointer,
            withheld, TreeHeads(topics.audit, topics.audit_heads, audit_signer, self.codec),
        )  # fmt: skip
        self.context = dataclasses.replace(self.context, audit=self.audit, directory=directory)
        self._state_topics = frozenset(t.topic for t in self.tables)
        self._matches: dict[tuple[str | None, bytes | None], MatchResult] = {}
        self._shares: dict[tuple[str, int, int], CommandShare] = {}
        self._local_resolve = self.indexes.resolve
        # The flows ask ctx.indexes.resolve; in a bucket the router's match is confirmed.
        self.indexes.resolve = self._resolve  # type: ignore[method-assign]  # this instance only
        self.unreadable = 0
        """Records of ``hub.route`` that were no envelope (nobody but routers writes it)."""

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        inputs: list[ConsumerRecord[bytes, bytes]] = []
        self._matches = {}
        self._shares = {}
        for record in records:
            try:
                routed = Routed.from_record(record)
            except DecodeError:
                self.unreadable += 1
                log.error(
                    "hub.route[%d]@%d is not a routed record", record.partition, record.offset
                )
                continue
            if routed.match is not None and routed.value is not None:
                self._remember(routed.value, routed.match)
            if routed.share is not None:
                self._shares[routed.topic, routed.partition, routed.offset] = routed.share
            inputs.append(routed.origin())
        return self._placed(super().handle(inputs))

    def _one(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        share = self._shares.get((record.topic, record.partition, record.offset))
        if share is not None and record.topic == self.topics.control:
            # The router sent an oversized command to one bucket, without a share.
            self.inputs["control"] += 1
            return rotation.handle_command(self.context, record, share)
        return super()._one(record)

    def tick(self, now_ms: int) -> list[Output]:
        return self._placed(super().tick(now_ms))

    def _placed(self, outputs: list[Output]) -> list[Output]:
        """State records go to the bucket's partition (the tables partition by key)."""
        state, bucket = self._state_topics, self.bucket
        return [
            dataclasses.replace(o, partition=bucket) if o.topic in state else o for o in outputs
        ]

    # -- enrolments: the router's match, confirmed ----------------------------------------

    def _resolve(self, my_number: str | None, basic4: Basic4Like | None) -> MatchResult:
        local = self._local_resolve(my_number, basic4)
        return confirm(self._matches.get(self._match_key(my_number, basic4)), local)

    def _remember(self, value: bytes, match: MatchResult) -> None:
        try:
            message = self.codec.decode(value)
        except DecodeError:
            return  # refused as undecodable by the hub itself
        if isinstance(message, EnrolmentRequest):
            self._matches[self._match_key(message.my_number, message.basic4)] = match

    def _match_key(
        self, my_number: str | None, basic4: Basic4Like | None
    ) -> tuple[str | None, bytes | None]:
        # Equal inputs get equal matches at the router, so the inputs key the match.
        try:
            digest = self.indexes.index.digest(basic4) if basic4 is not None else None
        except Exception:  # a basic-4 that does not normalise: no key
            digest = None
        return my_number, digest
