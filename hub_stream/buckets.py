"""Buckets of per-person state, and the records that carry an input to its bucket.

In the partitioned topology (``RENKEI_HUB_TOPOLOGY=partitioned``, ``docs/architecture.md``)
every piece of per-person state belongs to one of *P* buckets, *P* being the partition
count of the hub-internal topics: ``bucket = int(audit key[:8], 16) mod P``. The audit
key is an HMAC, so buckets are even. Bucket *p*'s state lives in partition *p* of each
``hub.state.*`` topic and its audit records in ``hub.audit[p]``.

The router (:mod:`.router`) writes each input record, unchanged, to ``hub.route[p]``
wrapped in a :class:`Routed` envelope that keeps where it came from (topic, partition,
offset, timestamp) and, for an enrolment, the router's match; for a signed command, the
bucket's share of it (:class:`~.control.CommandShare`). The task of bucket *p*
(:mod:`.tasks`) unwraps it into a record that presents the origin, so it handles it
exactly as the single-worker hub handles the input itself.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from renkei.errors import DecodeError
from renkei.topics import Topics, TopicSpec

from .control import CommandShare
from .matching import MatchResult

__all__ = [
    "ROUTE_MAGIC",
    "Routed",
    "bucket_of",
    "fallback_bucket",
    "match_from_json",
    "match_to_json",
    "route_spec",
    "route_topic",
]

ROUTE_MAGIC = b"RRT1"
"""The first bytes of a routed record's value (format version 1)."""

# magic | topic length (u16) | partition (u32) | offset (u64) | timestamp (i64) |
# has value (u8) | match length (u16); then topic, match JSON, original value.
_HEAD = struct.Struct(">4sHIQqBH")


def bucket_of(audit_key: str, partitions: int) -> int:
    """The bucket of the person with ``audit_key`` (hex) among ``partitions``.

    :raises ValueError: ``audit_key`` does not start with eight hex digits, or
        ``partitions`` is not positive.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be positive, got {partitions}")
    if len(audit_key) < 8:
        raise ValueError("an audit key has at least eight hex digits")
    return int(audit_key[:8], 16) % partitions


def fallback_bucket(partitions: int, *parts: str) -> int:
    """A fixed bucket for an input the router cannot place by person (it is refused
    there): the same parts always give the same bucket, so a copy of a refused message
    meets the first one's id in that bucket's replay memory."""
    return zlib.crc32("\x1f".join(parts).encode()) % partitions


def route_topic(topics: Topics) -> str:
    """``hub.route``: inputs on their way to the task of their bucket."""
    return f"{topics.prefix}hub.route"


def route_spec(topics: Topics) -> TopicSpec:
    """``hub.route`` has one partition per bucket. Its records are consumed once, so
    the broker's default retention applies; the maximum record size leaves room for the
    envelope around the largest input the router passes on."""
    return TopicSpec(route_topic(topics), topics.partitions, {"max.message.bytes": "2097152"})


def match_to_json(match: MatchResult) -> bytes:
    """The router's match for an enrolment, as it travels in the envelope."""
    return json.dumps(
        {
            "o": match.outcome,
            "p": match.person_id.hex() if match.person_id is not None else None,
            "d": match.detail,
            "m": match.matched_by,
        },
        separators=(",", ":"),
    ).encode()


def match_from_json(data: bytes) -> MatchResult:
    """The inverse of :func:`match_to_json`.

    :raises DecodeError: not a match the router wrote.
    """
    try:
        return _match_of(json.loads(data))
    except ValueError:
        raise DecodeError("not a routed match: JSONDecodeError") from None


def _match_of(doc: object) -> MatchResult:
    try:
        assert isinstance(doc, dict)  # for mypy; a list fails the lookups below anyway
        person = doc["p"]
        return MatchResult(
            outcome=doc["o"],
            person_id=bytes.fromhex(person) if person is not None else None,
            detail=str(doc["d"]),
            matched_by=doc["m"],
        )
    except (AssertionError, ValueError, KeyError, TypeError) as exc:
        raise DecodeError(f"not a routed match: {type(exc).__name__}") from None


# The envelope's JSON part: the match's fields (match_to_json), and "c" for a share of a
# command: {"s": speaks, "r": row indexes or null}. A router of an earlier version wrote
# the match alone, which reads the same.


def _meta_to_json(match: MatchResult | None, share: CommandShare | None) -> bytes:
    doc: dict[str, object] = json.loads(match_to_json(match)) if match is not None else {}
    if share is not None:
        rows = sorted(share.rows) if share.rows is not None else None
        doc["c"] = {"s": share.speaks, "r": rows}
    return json.dumps(doc, separators=(",", ":")).encode() if doc else b""


def _meta_from_json(data: bytes) -> tuple[MatchResult | None, CommandShare | None]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise DecodeError("a routed record's match is not JSON") from None
    if not isinstance(doc, dict):
        raise DecodeError("a routed record's match is not a JSON object")
    match = _match_of(doc) if "o" in doc else None
    share = None
    if "c" in doc:
        try:
            speaks, rows = doc["c"]["s"], doc["c"]["r"]
            if not isinstance(speaks, bool) or not (
                rows is None or all(isinstance(r, int) and not isinstance(r, bool) for r in rows)
            ):
                raise TypeError("a share's fields have other types")
            share = CommandShare(speaks, frozenset(rows) if rows is not None else None)
        except (KeyError, TypeError) as exc:
            raise DecodeError(f"not a routed command share: {type(exc).__name__}") from None
    return match, share


@dataclass(frozen=True, slots=True)
class Routed:
    """One input record on its way to its bucket.

    :param topic: the topic the input was read from.
    :param partition: its partition there.
    :param offset: its offset there.
    :param timestamp: its timestamp (ms), which orders a task's batch as the single hub
        orders its own (:func:`.hub.in_time_order`).
    :param key: its key.
    :param value: its value, unchanged (``None``: a tombstone).
    :param match: for an enrolment, the router's answer to "which person?".
    :param share: for a signed command sent to every bucket, this bucket's share of it.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    match: MatchResult | None = None
    share: CommandShare | None = None

    @classmethod
    def of(
        cls,
        record: ConsumerRecord[bytes, bytes],
        match: MatchResult | None = None,
        share: CommandShare | None = None,
    ) -> Routed:
        """The envelope of an input record as the router read it."""
        return cls(
            record.topic, record.partition, record.offset, record.timestamp,
            record.key, record.value, match, share,
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        """The routed record's value (the key travels as the routed record's key)."""
        topic = self.topic.encode()
        match = _meta_to_json(self.match, self.share)
        head = _HEAD.pack(
            ROUTE_MAGIC, len(topic), self.partition, self.offset, self.timestamp,
            self.value is not None, len(match),
        )  # fmt: skip
        return b"".join((head, topic, match, self.value or b""))

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> Routed:
        """The envelope in a record of ``hub.route``.

        :raises DecodeError: the value is not an envelope the router wrote.
        """
        data = record.value
        if data is None or len(data) < _HEAD.size or not data.startswith(ROUTE_MAGIC):
            raise DecodeError("not a routed record")
        _, topic_len, partition, offset, timestamp, has_value, match_len = _HEAD.unpack_from(data)
        at = _HEAD.size
        if len(data) < at + topic_len + match_len:
            raise DecodeError("a routed record cut short")
        try:
            topic = data[at : at + topic_len].decode()
        except UnicodeDecodeError:
            raise DecodeError("a routed record's topic is not UTF-8") from None
        at += topic_len
        match, share = _meta_from_json(data[at : at + match_len]) if match_len else (None, None)
        at += match_len
        value = data[at:] if has_value else None
        return cls(topic, partition, offset, timestamp, record.key, value, match, share)

    def origin(self) -> ConsumerRecord[bytes, bytes]:
        """A record that presents the input as it was read from its own topic."""
        return ConsumerRecord(
            topic=self.topic, partition=self.partition, offset=self.offset,
            timestamp=self.timestamp, timestamp_type=0, key=self.key, value=self.value,
            checksum=None,
            serialized_key_size=len(self.key) if self.key is not None else -1,
            serialized_value_size=len(self.value) if self.value is not None else -1,
            headers=(),
        )  # fmt: skip
