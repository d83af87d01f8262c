"""The signature verifier: every agency signature checked beside a ``trust-acl`` hub.

In ``trust-acl`` mode the hub forwards at once, relying on Kafka's ACLs for who wrote
each ``agency.<id>.out`` topic, and checks no agency signature itself (verifying one
costs more than the hub's whole budget a message: docs/benchmarks.md, "The floor"). So
that non-repudiation is still proven, workers run with ``RENKEI_HUB_ROLE=verifier``
read the same topics in a consumer group of their own (``<group>-verifier``: add workers
to share the partitions) and check every input as a ``strict`` hub would — it decodes,
its agency is in the directory, its sender is the topic's agency, its Ed25519 signature
verifies under the agency's key.

What they find goes to ``hub.audit.signatures``, kept forever: for each input partition
of each batch one signed :class:`~schemas.models.SignatureVerdict` naming the range of
offsets read, how many inputs were checked and every one that failed. It is written in
the transaction that commits the verifier's input offsets, so the ranges of a partition
follow each other with nothing checked twice and nothing skipped, across restarts and
rebalances. A failure is also logged and counted (``/healthz`` ``signatures``): the
alarm operators watch. Nothing the verifier finds changes what the hub did.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from aiokafka import ConsumerRecord

from renkei.crypto import SigningKey, sodium
from renkei.envelope import sign_message, verify_bytes
from renkei.errors import DecodeError, SignatureError
from renkei.topics import Topics
from schemas import limits
from schemas.codec import Codec
from schemas.models import ErrorCode, Header, SignatureFailure, SignatureVerdict

from .directory import Directory
from .ids import derive_id
from .outputs import Output
from .redact import describe_decode_error
from .refusals import Refusal, author_entry

__all__ = ["SignatureVerifier"]

log = logging.getLogger(__name__)


class SignatureVerifier:
    """The batch handler of a verifier's :class:`~.pipeline.TransactionalLoop`.

    :param topics: topic names.
    :param directory: returns the worker's current directory (followed as the hub's is).
    :param codec: decodes inputs and encodes verdicts.
    :param hub_key: signs the verdicts.
    """

    def __init__(
        self,
        topics: Topics,
        directory: Callable[[], Directory],
        codec: Codec,
        hub_key: SigningKey,
    ) -> None:
        self.topics = topics
        self._directory = directory
        self._codec = codec
        self._hub_key = hub_key
        self.counts: Counter[str] = Counter()
        """``checked`` and ``failed`` inputs of committed batches: the alarm's figures."""
        self._staged: Counter[str] = Counter()

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        partitions: dict[tuple[str, int], list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            partitions.setdefault((record.topic, record.partition), []).append(record)
        outputs = []
        for (topic, partition), inputs in partitions.items():
            outputs += self._verdicts(topic, partition, inputs)
        return outputs

    def tick(self, now_ms: int) -> list[Output]:
        return []

    def commit(self) -> None:
        self.counts += self._staged
        self._staged.clear()

    def rollback(self) -> None:
        self._staged.clear()  # the batch is read again, and counted then

    # -- one partition of a batch ------------------------------------------------------

    def _verdicts(
        self, topic: str, partition: int, inputs: list[ConsumerRecord[bytes, bytes]]
    ) -> list[Output]:
        """Verdicts on ``inputs`` (offset order), a new one after each
        :data:`~schemas.limits.VERDICT_FAILURES` failures so that each stays small."""
        agency = self.topics.agency_of(topic)
        verdicts = []
        first, checked, failures = inputs[0].offset, 0, list[SignatureFailure]()
        for record in inputs:
            checked += 1
            failure = self.check(agency, record)
            if failure is not None:
                failures.append(failure)
                log.error(
                    "signature check failed: %s[%d]@%d (message %s, sender %s): %s %s",
                    topic, partition, record.offset, failure.message_id, failure.sender,
                    failure.reason.value, failure.detail,
                )  # fmt: skip
            if len(failures) == limits.VERDICT_FAILURES or record is inputs[-1]:
                verdicts.append(
                    self._verdict(topic, partition, first, record.offset, checked, failures)
                )
                first, checked, failures = record.offset + 1, 0, []
        return verdicts

    def check(self, agency: str, record: ConsumerRecord[bytes, bytes]) -> SignatureFailure | None:
        """Why ``record`` of ``agency``'s topic fails, as a ``strict`` hub would refuse it;
        ``None`` when it verifies (or is a tombstone, which carries nothing to sign)."""
        value = record.value
        if value is None:
            return None
        if len(value) > limits.MESSAGE_BYTES:
            return _failure(
                record, ErrorCode.MALFORMED_MESSAGE,
                f"{len(value)} bytes, over the contract's {limits.MESSAGE_BYTES}",
            )  # fmt: skip
        try:
            message = self._codec.decode(value)
        except DecodeError as exc:
            return _failure(record, ErrorCode.MALFORMED_MESSAGE, describe_decode_error(exc))
        header = message.header
        try:
            entry = author_entry(self._directory(), agency, message)
        except Refusal as refused:  # the hub's own check, word for word
            return _failure(record, refused.code, refused.detail, header)
        try:
            verify_bytes(value, entry.signing_public_key, self._codec, sodium.verify)
        except SignatureError as exc:
            return _failure(record, ErrorCode.BAD_SIGNATURE, str(exc), header)
        return None

    def _verdict(
        self,
        topic: str,
        partition: int,
        first: int,
        last: int,
        checked: int,
        failures: list[SignatureFailure],
    ) -> Output:
        self._staged["checked"] += checked
        self._staged["failed"] += len(failures)
        # Derived from the range: a batch written again after a crash keeps its ids.
        message_id = derive_id("signature-verdict", topic, str(partition), str(first))
        verdict = SignatureVerdict(
            header=Header.new("hub", message_id=message_id),
            source_topic=topic,
            source_partition=partition,
            first_offset=first,
            last_offset=last,
            checked=checked,
            failures=tuple(failures),
        )
        signed = sign_message(verdict, self._hub_key, self._codec)
        key = f"{topic}:{partition}".encode()  # one partition's verdicts stay in order
        return Output(self.topics.audit_signatures, key, self._codec.encode(signed))


def _failure(
    record: ConsumerRecord[bytes, bytes],
    reason: ErrorCode,
    detail: str,
    header: Header | None = None,
) -> SignatureFailure:
    return SignatureFailure(
        offset=record.offset,
        message_id=header.message_id if header is not None else None,
        sender=header.sender if header is not None else None,
        reason=reason,
        detail=detail[: limits.DETAIL],
    )
