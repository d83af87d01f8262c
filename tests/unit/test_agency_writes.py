"""What the client and the provider write: signed as sent, and encoded once.

The bytes must be those of ``codec.encode(sign_message(message, ...))`` — the contract
(a Java agency verifies them) — without building the signed model only to encode it a
second time: a request and an answer are each encoded once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consumers.provider import ProviderService
from hub_stream.ids import derive_id
from producers.agency_client import AgencyClient
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey
from renkei.envelope import sign_message, verify_bytes
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import (
    AttributeRequest,
    ForwardedRequest,
    Header,
    HpkeSuite,
    Message,
    ProviderResponse,
    ResponseStatus,
    now_ms,
)

TOPICS = Topics(prefix="unit.")
HUB_KEY = SigningKey.generate()


class Outbox:
    """Stands in for a started AIOKafkaProducer: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, value, key))


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of every message the process-wide codec encodes, in order."""
    codec, seen = default_codec(), list[str]()
    encode = codec.encode

    def counted(message: Message) -> bytes:
        seen.append(type(message).__name__)
        return encode(message)

    monkeypatch.setattr(codec, "encode", counted)
    return seen


def _keys(agency_id: str) -> AgencyKeys:
    return AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate())


def _checked(value: bytes, keys: AgencyKeys, codec: Codec) -> Any:
    verify_bytes(value, keys.signing.public_bytes, codec)  # raises if it does not verify
    return codec.decode(value)


async def test_a_request_is_written_signed_and_encoded_once(encodes: list[str]) -> None:
    keys = _keys("city-a")
    client = AgencyClient("city-a", keys, {}, TOPICS, hub_public_key=HUB_KEY.public_bytes)
    client._producer = outbox = Outbox()
    pending = await client.send_request(link_code="A-CODE", provider="tax-b",
                                        scenario_id="S-001", items=("income_2024",))  # fmt: skip
    assert encodes == ["AttributeRequest"]
    ((topic, value, key),) = outbox.sent
    assert (topic, key) == (TOPICS.agency_out("city-a"), b"A-CODE")
    sent = _checked(value, keys, default_codec())
    assert sent == sign_message(pending.request, keys.signing, default_codec())
    # The very bytes of the signed model encoded: what the contract specifies.
    assert value == default_codec().encode(sent)


async def test_an_answer_is_written_signed_and_encoded_once(encodes: list[str]) -> None:
    keys = _keys("tax-b")

    async def lookup(request: ForwardedRequest) -> dict[str, Any]:
        return {"income_2024": 3_120_000}

    provider = ProviderService("tax-b", keys, {}, TOPICS, lookup,
                               hub_public_key=HUB_KEY.public_bytes)  # fmt: skip
    provider._producer = outbox = Outbox()
    reply = SealingKeyPair.generate()
    request = AttributeRequest(
        header=Header.new("city-a"), request_id="r-1", requester_link_code="A-CODE",
        provider="tax-b", scenario_id="S-001", items=("income_2024",),
        reply_public_key=reply.public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=now_ms() + timedelta(seconds=10),
    )  # fmt: skip
    hub_request_id = derive_id("hub-request", "city-a", request.header.message_id)
    forwarded = ForwardedRequest(
        header=Header.new("hub", request.header.message_id), hub_request_id=hub_request_id,
        provider_link_code="B-CODE", requester="city-a", scenario_id="S-001",
        legal_basis="番号法 別表 1", items=request.items, reply_public_key=reply.public_bytes,
        hpke_suite=HpkeSuite.X25519, deadline=request.deadline, request_id="r-1",
    )  # fmt: skip
    assert await provider._on_forwarded(forwarded)
    assert encodes == ["ProviderResponse"]
    ((topic, value, key),) = outbox.sent
    assert (topic, key) == (TOPICS.agency_out("tax-b"), b"B-CODE")
    sent = _checked(value, keys, default_codec())
    assert isinstance(sent, ProviderResponse)
    assert (sent.hub_request_id, sent.status) == (hub_request_id, ResponseStatus.PROVIDED)
    assert value == default_codec().encode(sent)
    # answer(), the public call, still returns the answer signed.
    signed = await provider.answer(forwarded)
    verify_bytes(default_codec().encode(signed), keys.signing.public_bytes, default_codec())
