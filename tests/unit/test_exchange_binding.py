"""Sealed answers are bound to their exchange: the aad, and a hub that swaps or replays.

The exchanges run through the real hub in memory (:mod:`tests.unit.hub_world`), the real
provider and the real agency client; only Kafka is missing. The "malicious hub" moves
sealed payloads between answers and re-signs them with the hub's own key, which is all a
hub (or anyone writing ``agency.A.in`` with the hub's key) could do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consumers.provider import ProviderService
from producers.agency_client import AgencyClient, PendingRequest, open_response
from renkei.crypto import SealingKeyPair, exchange_aad, keystore
from renkei.crypto.context import attributes_aad, items_part
from renkei.envelope import sign_message
from renkei.errors import SealingError
from schemas.codec import Codec, default_codec, message_types_in
from schemas.loader import RELEASED_DIR
from schemas.models import (
    AttributeResponse,
    ForwardedRequest,
    Message,
    ResponseStatus,
)
from tests.unit.hub_world import NUMBERS, PENSION, World, codes_of

CODEC = default_codec()
KEY = SealingKeyPair.generate().public_bytes
PARTS: dict[str, Any] = {
    "scenario_id": "S003", "requester": "city-shinagawa", "provider": "jps",
    "request_id": "r-1", "items": ("pension.benefit_status",), "reply_public_key": KEY,
}  # fmt: skip


# -- the aad ----------------------------------------------------------------------------


def test_the_aad_is_the_six_parts_in_order() -> None:
    assert attributes_aad(**PARTS) == exchange_aad(
        "S003", "city-shinagawa", "jps", "r-1", "pension.benefit_status", KEY.hex()
    )


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("scenario_id", "S004"),
        ("requester", "city-meguro"),
        ("provider", "nta"),
        ("request_id", "r-2"),
        ("items", ("pension.benefit_status", "pension.annual_amount")),
        ("reply_public_key", SealingKeyPair.generate().public_bytes),
    ],
    ids=lambda v: v if v in PARTS else "",  # no random bytes in ids: pytest-xdist compares them
)
def test_every_part_changes_the_aad(name: str, other: Any) -> None:
    assert attributes_aad(**PARTS) != attributes_aad(**{**PARTS, name: other})


def test_the_items_are_a_set() -> None:
    assert items_part(["b.x", "a.y", "b.x"]) == "a.y\nb.x"
    shuffled = {**PARTS, "items": ("pension.b", "pension.a", "pension.b")}
    assert attributes_aad(**shuffled) == attributes_aad(**{**PARTS, "items": ["pension.a", "pension.b"]})  # fmt: skip  # noqa: E501


@pytest.mark.parametrize("items", [["a.b\nc.d"], ["a.b", ""]])
def test_an_item_code_that_would_blur_the_set_is_refused(items: list[str]) -> None:
    with pytest.raises(SealingError, match="line feed"):
        attributes_aad(**{**PARTS, "items": items})


def test_an_answer_must_name_its_request() -> None:
    with pytest.raises(SealingError, match="request id"):
        attributes_aad(**{**PARTS, "request_id": ""})


# -- a hub that swaps or replays answers ------------------------------------------------


class Outbox:
    """Stands in for the client's producer: keeps what the client writes."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.values.append(value)


class Exchanges:
    """city-shinagawa asks jps (scenario S003) through the hub in memory."""

    def __init__(self, world: World) -> None:
        self.world = world
        hub_key = keystore.load_hub_signing_key(world.key_dir)
        self.hub_key = hub_key
        self.outbox = Outbox()
        # One reply key for every request: the case in which only the request id tells
        # two answers apart.
        self.client = AgencyClient(
            "city-shinagawa", world.keys("city-shinagawa"), {}, world.topics,
            hub_public_key=hub_key.public_bytes, reply_keys="per_client",
        )  # fmt: skip
        self.client._producer = self.outbox  # stands in for a started AIOKafkaProducer

        async def lookup(request: ForwardedRequest) -> dict[str, Any]:
            return {item: f"{item} of {request.provider_link_code}" for item in request.items}

        self.provider = ProviderService(
            "jps", world.keys("jps"), {}, world.topics, lookup, hub_public_key=hub_key.public_bytes
        )
        self.city: list[str] = []
        self.jps: list[str] = []
        for i, number in enumerate(NUMBERS[:2]):
            world.run(world.registration(f"1000000000{i}", number))
            self.city += codes_of(world.run(world.enrolment("city-shinagawa", number)))
            self.jps += codes_of(world.run(world.enrolment("jps", number)))

    async def ask(self, person: int) -> tuple[PendingRequest, AttributeResponse]:
        """The client asks about one person; the hub, then jps, then the hub again answer."""
        pending = await self.client.send_request(
            link_code=self.city[person], provider="jps", scenario_id="S003", items=PENSION
        )
        world = self.world
        sent = world.record(world.topics.agency_out("city-shinagawa"), self.outbox.values[-1])
        (forwarded,) = [m for m in world.run(sent) if isinstance(m, ForwardedRequest)]
        assert forwarded.request_id == pending.request_id  # the hub copied it
        answer = await self.provider.answer(forwarded)
        assert answer.status is ResponseStatus.PROVIDED
        back = world.record(world.topics.agency_out("jps"), CODEC.encode(answer))
        (routed,) = [m for m in world.run(back) if isinstance(m, AttributeResponse)]
        return pending, routed

    def deliver(self, message: Message) -> bool:
        """The hub writes ``message`` to agency.city-shinagawa.in, signed with its key."""
        return self.client.dispatch_bytes(CODEC.encode(sign_message(message, self.hub_key, CODEC)))


def _with_sealed_of(answer: AttributeResponse, other: AttributeResponse) -> AttributeResponse:
    return answer.model_copy(update={"sealed": other.sealed})


@pytest.fixture
def exchanges(tmp_path: Path) -> Exchanges:
    return Exchanges(World(tmp_path / "keys"))


async def test_honest_answers_open_with_each_persons_values(exchanges: Exchanges) -> None:
    for person in (0, 1):
        pending, routed = await exchanges.ask(person)
        assert exchanges.deliver(routed)
        item = PENSION[0]
        assert await pending.result() == {item: f"{item} of {exchanges.jps[person]}"}


async def test_two_answers_swapped_by_the_hub_open_for_neither_request(
    exchanges: Exchanges,
) -> None:
    """Same scenario, same requester, same reply key; different persons and request ids."""
    first, first_answer = await exchanges.ask(0)
    second, second_answer = await exchanges.ask(1)
    assert first.request.reply_public_key == second.request.reply_public_key
    assert exchanges.deliver(_with_sealed_of(first_answer, second_answer))
    assert exchanges.deliver(_with_sealed_of(second_answer, first_answer))
    for pending in (first, second):
        with pytest.raises(SealingError):
            await pending.result()


async def test_an_answer_replayed_onto_a_later_request_does_not_open(
    exchanges: Exchanges,
) -> None:
    """The same person, scenario, items and reply key, asked again: the old values stay old."""
    earlier, earlier_answer = await exchanges.ask(0)
    assert exchanges.deliver(earlier_answer)
    await earlier.result()
    later, later_answer = await exchanges.ask(0)
    assert exchanges.deliver(_with_sealed_of(later_answer, earlier_answer))
    with pytest.raises(SealingError):
        await later.result()


async def test_items_the_hub_changed_on_the_way_to_the_provider_do_not_open(
    exchanges: Exchanges,
) -> None:
    """The provider seals for the items it was forwarded; the requester opens for its own."""
    pending, routed = await exchanges.ask(0)
    reply_key = exchanges.client._reply_key("X25519")
    asked_for_more = pending.request.model_copy(
        update={"items": (*PENSION, "pension.annual_amount")}
    )
    with pytest.raises(SealingError):
        open_response(routed, asked_for_more, reply_key)
    assert open_response(routed, pending.request, reply_key)


# -- a forwarded request from a hub older than request_id -------------------------------


async def test_a_v1_forwarded_request_decodes_and_is_refused_unlooked(
    exchanges: Exchanges, tmp_path: Path
) -> None:
    pending = await exchanges.client.send_request(
        link_code=exchanges.city[0], provider="jps", scenario_id="S003", items=PENSION
    )
    world = exchanges.world
    sent = world.record(world.topics.agency_out("city-shinagawa"), exchanges.outbox.values[-1])
    (forwarded,) = [m for m in world.run(sent) if isinstance(m, ForwardedRequest)]
    # what a hub of release v1 writes: no request_id field at all
    folder = RELEASED_DIR / "v1"
    v1 = Codec(folder, tmp_path / "none", message_types_in(folder))
    assert v1.fingerprint(ForwardedRequest) != CODEC.fingerprint(ForwardedRequest)
    old = CODEC.decode(v1.encode(forwarded))
    assert isinstance(old, ForwardedRequest)
    assert old.request_id == ""
    assert old.model_copy(update={"request_id": pending.request_id}) == forwarded
    looked_up: list[ForwardedRequest] = []

    async def lookup(request: ForwardedRequest) -> dict[str, Any]:
        looked_up.append(request)
        return {}

    exchanges.provider.handler = lookup
    answer = await exchanges.provider.answer(old)
    assert answer.status is ResponseStatus.REFUSED
    assert "request id" in answer.detail
    assert looked_up == []
