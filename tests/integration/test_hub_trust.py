"""Agencies believe only the hub, on a real broker: forgeries on their inboxes are refused.

The requester and the provider are configured as an agency deploys them: the hub's key
from ``RENKEI_HUB_PUBLIC_BUNDLE``, nothing passed in code. Someone who can write the
agencies' inboxes (a leaked credential, a misconfigured ACL) writes a forged forwarded
request and a forged answer; the forged answer is even sealed properly, to the right
reply key for the right request, so only the missing signature gives it away.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from consumers import HUB_BUNDLE_ENV, ProviderService
from producers.agency_client import AgencyClient
from producers.population import generate_population
from renkei.crypto import encode_attributes, seal
from renkei.crypto.context import attributes_aad
from renkei.errors import RenkeiError, SignatureError
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    ForwardedRequest,
    Header,
    ResponseStatus,
    SealedPayload,
)
from tests.integration.hub_env import HubEnv, hub_env
from tests.integration.test_exchange import enrolled_pair, register_all, scenario_between

CODEC = default_codec()


@pytest.fixture
async def env(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys") as running:
        yield running


def forged_answer(request: AttributeRequest, link_code: str, value: str) -> AttributeResponse:
    """What a forger who saw the request writes: values sealed for exactly this request."""
    aad = attributes_aad(
        scenario_id=request.scenario_id, requester=request.header.sender,
        provider=request.provider, request_id=request.request_id, items=request.items,
        reply_public_key=request.reply_public_key,
    )  # fmt: skip
    values = encode_attributes(dict.fromkeys(request.items, value))
    enc, ciphertext = seal("X25519", request.reply_public_key, values, aad=aad)
    return AttributeResponse(
        header=Header.new("hub", request.header.message_id), request_id=request.request_id,
        requester_link_code=link_code, provider=request.provider,
        scenario_id=request.scenario_id, status=ResponseStatus.PROVIDED,
        sealed=SealedPayload(suite=request.hpke_suite, enc=enc, ciphertext=ciphertext),
        detail="",
    )  # fmt: skip


def forged_forward(request: AttributeRequest, jps_code: str) -> ForwardedRequest:
    return ForwardedRequest(
        header=Header.new("hub"), hub_request_id="f" * 32, provider_link_code=jps_code,
        requester="city-shinagawa", scenario_id=request.scenario_id, legal_basis="forged",
        items=request.items, reply_public_key=request.reply_public_key,
        hpke_suite=request.hpke_suite, deadline=request.deadline,
        request_id=request.request_id,
    )  # fmt: skip


async def test_forgeries_on_the_inboxes_are_refused_and_the_real_answer_arrives(
    env: HubEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HUB_BUNDLE_ENV, str(env.hub_bundle))
    person = generate_population(1, seed=61)[0]
    await register_all(env, [person])
    city_code, jps_code = await enrolled_pair(env, person)
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    forgeries_written = asyncio.Event()
    asked: list[ForwardedRequest] = []

    async def provide(request: ForwardedRequest) -> dict[str, Any]:
        asked.append(request)
        # Answer only once the forged answer is in the requester's partition: it is read
        # first, as it would be if the forger were quicker than the provider.
        await forgeries_written.wait()
        return dict.fromkeys(request.items, "genuine")

    refused: dict[str, list[RenkeiError]] = {"city": [], "jps": []}
    city = AgencyClient(
        "city-shinagawa", env.keys("city-shinagawa"), env.kafka, env.topics, grace_s=5
    )
    city.reader.on_rejected = refused["city"].append
    provider = ProviderService(
        "jps", env.keys("jps"), env.kafka, env.topics, provide,
        group_id=f"{env.topics.prefix}agency.jps.provider",
    )  # fmt: skip
    provider.reader.on_rejected = refused["jps"].append
    forger = AIOKafkaProducer(**env.kafka, acks="all")
    async with city, forger:
        pending = await city.send_request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
        )
        # Keyed as the hub keys them. The provider starts after its forgery is written;
        # the forged answer goes into the requester's partition before the real answer.
        await forger.send_and_wait(
            env.topics.agency_in("jps"),
            CODEC.encode(forged_forward(pending.request, jps_code)),
            key=jps_code.encode(),
        )
        async with provider:
            await forger.send_and_wait(
                env.topics.agency_in("city-shinagawa"),
                CODEC.encode(forged_answer(pending.request, city_code, "forged")),
                key=city_code.encode(),
            )
            forgeries_written.set()
            assert await pending.result() == {items[0]: "genuine"}
    assert len(asked) == 1  # the real forward only
    assert asked[0].hub_request_id != "f" * 32
    assert (city.bad_signatures, provider.bad_signatures) == (1, 1)
    assert [type(e) for e in refused["city"]] == [SignatureError]
    assert "AttributeResponse" in str(refused["city"][0])
    assert [type(e) for e in refused["jps"]] == [SignatureError]
    assert "ForwardedRequest" in str(refused["jps"][0])
    assert city.unmatched_count == 0
