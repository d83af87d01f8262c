"""Agencies believe only the hub: its key is required, and what it did not sign is refused.

Where the key comes from (argument, bundle path, ``RENKEI_HUB_PUBLIC_BUNDLE``), what is
refused as a key, the explicit opt-out, and a forged answer and a forged forwarded
request that are refused, typed and counted, while the genuine ones get through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers import HUB_BUNDLE_ENV, InboxReader, LifecycleSubscriber, ProviderService
from producers import AgencyClient
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey, encode_attributes, seal
from renkei.crypto.bundles import write_bundle
from renkei.crypto.context import attributes_aad
from renkei.crypto.keystore import hub_public_keys
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError, RenkeiError, SignatureError
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeResponse,
    ForwardedRequest,
    Header,
    HpkeSuite,
    Message,
    ResponseStatus,
    SealedPayload,
    now_ms,
)

CODEC = default_codec()
TOPICS = Topics(prefix="unit.")
HUB_KEY = SigningKey.generate()
HUB = HUB_KEY.public_bytes


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes | None


def _keys(agency_id: str) -> AgencyKeys:
    return AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate())


@pytest.fixture
def no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HUB_BUNDLE_ENV, raising=False)


@pytest.fixture
def hub_bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path, hub_public_keys(HUB_KEY))


# -- where the key comes from --------------------------------------------------------


@pytest.mark.usefixtures("no_bundle")
def test_without_the_hubs_key_no_reader_is_built() -> None:
    with pytest.raises(ConfigurationError, match=HUB_BUNDLE_ENV) as caught:
        InboxReader("jps", {}, TOPICS)
    assert "renkei directory hub-key" in str(caught.value)
    for build in (
        lambda: AgencyClient("jps", _keys("jps"), {}, TOPICS),
        lambda: ProviderService("jps", _keys("jps"), {}, TOPICS, _nothing),
        lambda: LifecycleSubscriber("jps", _keys("jps"), {}, TOPICS, {}),
    ):
        with pytest.raises(ConfigurationError, match="verification key is required"):
            build()


def test_the_key_from_the_environments_bundle(
    monkeypatch: pytest.MonkeyPatch, hub_bundle: Path
) -> None:
    monkeypatch.setenv(HUB_BUNDLE_ENV, str(hub_bundle))
    assert InboxReader("jps", {}, TOPICS).hub_public_key == HUB
    assert AgencyClient("jps", _keys("jps"), {}, TOPICS).reader.hub_public_key == HUB


@pytest.mark.usefixtures("no_bundle")
def test_the_key_given_as_bytes_keys_or_a_bundle_path(hub_bundle: Path) -> None:
    for given in (HUB, hub_public_keys(HUB_KEY), hub_bundle, str(hub_bundle)):
        assert InboxReader("jps", {}, TOPICS, hub_public_key=given).hub_public_key == HUB


def test_an_explicit_key_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(HUB_BUNDLE_ENV, str(tmp_path / "absent.public.json"))
    assert InboxReader("jps", {}, TOPICS, hub_public_key=HUB).hub_public_key == HUB


@pytest.mark.usefixtures("no_bundle")
def test_what_is_not_the_hubs_key_is_refused(tmp_path: Path) -> None:
    jps = _keys("jps")
    agency_bundle = write_bundle(tmp_path, jps.public())
    refused: list[tuple[Any, str]] = [
        (b"\x01" * 31, "not an Ed25519 public key"),
        (jps.public(), "keys of 'jps'"),
        (agency_bundle, "bundle of 'jps', not of the hub"),
        (tmp_path / "absent.public.json", "cannot read"),
    ]
    for given, reason in refused:
        with pytest.raises(ConfigurationError, match=reason):
            InboxReader("jps", {}, TOPICS, hub_public_key=given)


def test_a_bad_bundle_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(HUB_BUNDLE_ENV, str(write_bundle(tmp_path, _keys("jps").public())))
    with pytest.raises(ConfigurationError, match="not of the hub"):
        InboxReader("jps", {}, TOPICS)


@pytest.mark.usefixtures("no_bundle")
def test_opting_out_is_explicit_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        reader = InboxReader("jps", {}, TOPICS, verify_hub=False)
    assert reader.hub_public_key is None
    assert "NOT verifying" in caplog.text
    with pytest.raises(ConfigurationError, match="verify_hub=False"):
        InboxReader("jps", {}, TOPICS, hub_public_key=HUB, verify_hub=False)
    service = ProviderService("jps", _keys("jps"), {}, TOPICS, _nothing, verify_hub=False)
    assert service.reader.hub_public_key is None


# -- forged messages on the inbox ----------------------------------------------------


class Outbox:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.values.append(value)


async def _nothing(request: ForwardedRequest) -> None:
    return None


def _answer(pending: Any, values: dict[str, Any], header: Header) -> AttributeResponse:
    """An answer to ``pending`` holding ``values``, sealed exactly as a provider would."""
    request = pending.request
    aad = attributes_aad(
        scenario_id=request.scenario_id, requester=request.header.sender,
        provider=request.provider, request_id=request.request_id, items=request.items,
        reply_public_key=request.reply_public_key,
    )  # fmt: skip
    enc, ciphertext = seal("X25519", request.reply_public_key, encode_attributes(values), aad=aad)
    return AttributeResponse(
        header=header, request_id=request.request_id, requester_link_code="A-CODE",
        provider=request.provider, scenario_id=request.scenario_id,
        status=ResponseStatus.PROVIDED,
        sealed=SealedPayload(suite=HpkeSuite.X25519, enc=enc, ciphertext=ciphertext), detail="",
    )  # fmt: skip


@pytest.mark.parametrize("forger", ["unsigned", "another key"])
async def test_a_forged_answer_is_refused_typed_and_the_real_one_arrives(
    monkeypatch: pytest.MonkeyPatch, hub_bundle: Path, forger: str
) -> None:
    """Configured only through the environment, as an agency would deploy it."""
    monkeypatch.setenv(HUB_BUNDLE_ENV, str(hub_bundle))
    refused: list[RenkeiError] = []
    client = AgencyClient("city-a", _keys("city-a"), {}, TOPICS)
    client.reader.on_rejected = refused.append
    client._producer = Outbox()  # stands in for a started AIOKafkaProducer
    pending = await client.send_request(
        link_code="A-CODE", provider="tax-b", scenario_id="S-001", items=["income_2024"]
    )
    # Sealed properly to the reply key, for this very request: only the signature tells.
    forged = _answer(pending, {"income_2024": 1}, Header.new("hub", message_id="f" * 32))
    if forger == "another key":
        forged = sign_message(forged, SigningKey.generate(), CODEC)
    real = sign_message(
        _answer(pending, {"income_2024": 3_120_000}, Header.new("hub")), HUB_KEY, CODEC
    )
    records = [Record(0, CODEC.encode(forged)), Record(1, CODEC.encode(real))]
    assert await client.reader.handle_batch({"p0": records}) == {"p0": 2}
    assert await pending.result() == {"income_2024": 3_120_000}
    assert client.bad_signatures == 1
    assert [type(e) for e in refused] == [SignatureError]
    assert "AttributeResponse" in str(refused[0])
    assert client.unmatched_count == 0  # the forgery reached nobody


async def test_a_forged_forwarded_request_never_reaches_the_providers_handler() -> None:
    asked: list[ForwardedRequest] = []

    async def lookup(request: ForwardedRequest) -> dict[str, Any]:
        asked.append(request)
        return {"income_2024": 1}

    provider = ProviderService("tax-b", _keys("tax-b"), {}, TOPICS, lookup, hub_public_key=HUB)
    outbox = Outbox()
    provider._producer = outbox
    request = ForwardedRequest(
        header=Header.new("hub"), hub_request_id="h" * 32, provider_link_code="B-CODE",
        requester="city-a", scenario_id="S-001", legal_basis="basis", items=("income_2024",),
        reply_public_key=SealingKeyPair.generate().public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=now_ms() + timedelta(seconds=10), request_id="r-1",
    )  # fmt: skip
    forged = request.model_copy(update={"header": Header.new("hub"), "provider_link_code": "X"})
    records: list[Message] = [forged, sign_message(request, HUB_KEY, CODEC)]
    batch = {"p0": [Record(i, CODEC.encode(m)) for i, m in enumerate(records)]}
    assert await provider.reader.handle_batch(batch) == {"p0": 2}
    assert [r.provider_link_code for r in asked] == ["B-CODE"]
    assert provider.bad_signatures == 1
    assert len(outbox.values) == 1
