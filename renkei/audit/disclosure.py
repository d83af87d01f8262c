"""Releasing withheld audit records to the citizen portal.

Records of exchanges under a withheld scenario (an investigation) are written with
``disclosable = false``; the portal hides them until an operator releases them. A release
is an operator's signed statement on ``hub.disclosure`` (one partition, kept forever),
JSON because it is an operator-to-portal message outside the agencies' contract::

    {"format": "renkei-release/1", "release_id": "…", "released_at": "2026-…Z",
     "operator": "operator", "reason": "investigation closed",
     "hub_request_id": "…" | null, "scenario_id": "S017" | null, "until_ms": 1764… | null,
     "signature": "<base64 Ed25519>"}

It releases every record of one exchange (``hub_request_id``), or every record under a
scenario that occurred before ``until_ms`` (all of them when null). The signature is over
the canonical JSON (sorted keys, no spaces, UTF-8) of every field but ``signature``, by
the operator's key; the portal checks it against the operators' public key pinned in its
own configuration (never one read from Kafka) and ignores a release that does not verify.
Releasing never edits the trail: the chain stays as written, and the release itself is
kept beside it for as long.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.crypto import SigningKey, verify
from renkei.errors import AuditError
from renkei.topics import Topics, TopicSpec

__all__ = ["Release", "disclosure_topic", "publish_release", "sign_release"]


def disclosure_topic(topics: Topics) -> str:
    """``hub.disclosure`` under the deployment's prefix."""
    return f"{topics.prefix}hub.disclosure"


class Release(BaseModel):
    """An operator's decision to show withheld records to the citizen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-release/1"] = "renkei-release/1"
    release_id: str
    released_at: str
    operator: str
    reason: str
    hub_request_id: str | None = None
    scenario_id: str | None = None
    until_ms: int | None = None
    signature: str = ""

    def payload(self) -> bytes:
        body = self.model_dump(exclude={"signature"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def check(self, operator_key: bytes) -> None:
        """:raises renkei.errors.SignatureError: not signed by ``operator_key``."""
        verify(operator_key, self.payload(), base64.b64decode(self.signature))

    def covers(self, scenario_id: str | None, hub_request_id: str | None, occurred_ms: int) -> bool:
        if self.hub_request_id is not None:
            return hub_request_id == self.hub_request_id
        if self.scenario_id is not None and scenario_id == self.scenario_id:
            return self.until_ms is None or occurred_ms < self.until_ms
        return False

    @classmethod
    def parse(cls, data: bytes) -> Release:
        """:raises AuditError: not a release."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise AuditError(f"not a release: {exc.error_count()} problem(s)") from exc


def sign_release(
    key: SigningKey,
    reason: str,
    *,
    hub_request_id: str | None = None,
    scenario_id: str | None = None,
    until_ms: int | None = None,
    operator: str = "operator",
) -> Release:
    """A signed release of one exchange or of a scenario's records.

    :raises AuditError: neither or both of ``hub_request_id`` and ``scenario_id``.
    """
    if (hub_request_id is None) == (scenario_id is None):
        raise AuditError("a release names either one hub request id or one scenario")
    release = Release(
        release_id=uuid.uuid4().hex,
        released_at=datetime.now(UTC).isoformat(timespec="seconds"),
        operator=operator,
        reason=reason,
        hub_request_id=hub_request_id,
        scenario_id=scenario_id,
        until_ms=until_ms,
    )
    signature = base64.b64encode(key.sign(release.payload())).decode()
    return release.model_copy(update={"signature": signature})


async def publish_release(kafka: dict[str, Any], topics: Topics, release: Release) -> None:
    """Write ``release`` to ``hub.disclosure`` (created, kept forever, if missing)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    from renkei.topics import ensure_topics

    topic = disclosure_topic(topics)
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        forever = {"retention.ms": "-1", "retention.bytes": "-1"}
        await ensure_topics(admin, [TopicSpec(topic, 1, forever)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, release.model_dump_json().encode(), key=release.release_id.encode()
        )
    finally:
        await producer.stop()
