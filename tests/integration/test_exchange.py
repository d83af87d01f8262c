"""Enrolment and attribute exchange end to end on a real broker, with every refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from consumers.provider import ProviderService
from hub_stream.deadletters import open_letter
from producers.agency_client import AgencyClient
from producers.population import Person, duplicate_groups, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import AgencyKeys
from renkei.errors import HubRefusedError, ProviderDeclinedError
from renkei.topics import Topics
from schemas.models import (
    AuditRecord,
    AuditStep,
    Basic4,
    DeadLetter,
    EnrolmentOutcome,
    ErrorCode,
    ForwardedRequest,
    HpkeSuite,
    Sex,
)
from tests.integration.hub_env import HubEnv, hub_env, read_topic
from tests.integration.principals import Principals

PENSION_STATUS = {"pension.benefit_status": "PAID", "pension.annual_amount": 1_234_567}


def basic4_of(person: Person) -> Basic4:
    return Basic4(
        name=person.name,
        name_kana=person.name_kana,
        birth_date=person.birth_date,
        sex=Sex(person.sex),
        address=person.address,
    )


async def register_all(env: HubEnv, people: list[Person]) -> None:
    """Publish the people; Kafka has them when this returns, the hub may not yet.

    No wait for the hub is needed before enrolling a few people: the registrations are
    acknowledged before any enrolment is sent, so the hub fetches them no later than the
    enrolments, and a registration and an enrolment in one batch are handled in the
    order they were produced, the enrolment seeing the staged person. Larger populations
    need :func:`wait_registered`.
    """
    async with RegistryPublisher(
        env.keys("registry"), env.kafka_of("registry"), env.topics
    ) as registry:
        for person in people:
            await registry.register(
                person.resident_code, person.my_number, basic4_of(person), person.birth_date
            )


async def wait_registered(kafka: dict[str, Any], topics: Topics, count: int) -> None:
    """Wait until the audit trail shows ``count`` applied registry events.

    Still needed before enrolling hundreds of people: ``registry.events`` and the
    agencies' topics are different partitions, read in parallel, and Kafka orders
    nothing across partitions. A burst of registrations spans several fetches, and while
    the hub still holds one partition's earlier records it fetches only the other
    partitions — an enrolment can then reach the hub before a registration published
    before it (NO_MATCH). On a multi-broker cluster the partitions' leaders differ and
    the fetches race outright.
    """

    def applied(got: list[Any]) -> bool:
        steps = (isinstance(m, AuditRecord) and m.step is AuditStep.REGISTRY_APPLIED for m in got)
        return sum(steps) >= count

    await read_topic(kafka, topics.audit, applied, timeout_s=60)


def client(env: HubEnv, agency: str) -> AgencyClient:
    return AgencyClient(
        agency,
        env.keys(agency),
        env.kafka_of(agency),
        env.topics,
        grace_s=5,
        hub_public_key=env.hub_key,
    )


async def pension_handler(request: ForwardedRequest) -> dict[str, Any] | None:
    return {item: PENSION_STATUS[item] for item in request.items}


@pytest.fixture
async def env(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(principals, topics, tmp_path / "keys") as running:
        yield running


async def test_enrolment_outcomes(env: HubEnv) -> None:
    population = generate_population(5, seed=7, duplicates=1)
    await register_all(env, population)
    (twin, _), *_ = duplicate_groups(population)  # same basic-4 as another person
    people = [
        p
        for p in population
        if p.resident_code not in {g.resident_code for g in duplicate_groups(population)[0]}
    ]
    async with client(env, "jps") as jps:
        by_number = await jps.enrol("J-1", my_number=people[0].my_number, capacity="受給者")
        assert by_number.outcome is EnrolmentOutcome.LINKED
        assert by_number.link_code
        by_basic4 = await jps.enrol("J-1b", basic4=basic4_of(people[0]))
        assert by_basic4.outcome is EnrolmentOutcome.LINKED
        assert by_basic4.link_code == by_number.link_code  # one person, one code per agency
        ambiguous = await jps.enrol("J-2", basic4=basic4_of(twin))
        assert ambiguous.outcome is EnrolmentOutcome.AMBIGUOUS
        assert ambiguous.link_code is None
        born_earlier = people[1].birth_date.replace(year=1901)
        stranger = basic4_of(people[1]).model_copy(update={"birth_date": born_earlier})
        assert (await jps.enrol("J-3", basic4=stranger)).outcome is EnrolmentOutcome.NO_MATCH
        number = people[0].my_number
        wrong_check_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
        invalid = await jps.enrol("J-4", my_number=wrong_check_digit)
        assert invalid.outcome is EnrolmentOutcome.INVALID
    async with client(env, "city-shinagawa") as city:
        other = await city.enrol("S-1", my_number=people[0].my_number)
        assert other.link_code
        assert other.link_code != by_number.link_code  # unlinkable codes
    enrolment_steps = (AuditStep.ENROLLED, AuditStep.NOT_ENROLLED)
    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: sum(isinstance(m, AuditRecord) and m.step in enrolment_steps for m in got) >= 6,
    )  # fmt: skip
    steps = [m.step for m in audit if isinstance(m, AuditRecord)]
    assert steps.count(AuditStep.ENROLLED) == 3
    assert steps.count(AuditStep.NOT_ENROLLED) == 3


async def enrolled_pair(env: HubEnv, person: Person) -> tuple[str, str]:
    """Enrol ``person`` at the city (requester) and the pension service (provider)."""
    async with client(env, "city-shinagawa") as city, client(env, "jps") as jps:
        city_code = (await city.enrol("S-9", my_number=person.my_number)).link_code
        jps_code = (await jps.enrol("J-9", my_number=person.my_number)).link_code
    assert city_code
    assert jps_code
    return city_code, jps_code


def scenario_between(env: HubEnv, requester: str, provider: str) -> tuple[str, tuple[str, ...]]:
    directory = env.hub.hub.directory
    for s in directory.scenarios.values():
        if s.requester == requester and s.provider == provider:
            return s.scenario_id, s.items
    raise AssertionError(f"no scenario {requester} → {provider} in the sample directory")


async def one_person_to_ask_about(env: HubEnv, seed: int) -> tuple[str, str, tuple[str, ...]]:
    """A registered person enrolled at the city and at jps: the city's link code, and a
    scenario city-shinagawa → jps with its items."""
    people = generate_population(1, seed=seed)
    await register_all(env, people)
    city_code, _ = await enrolled_pair(env, people[0])
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    return city_code, scenario, items


def answering_jps(env: HubEnv) -> ProviderService:
    """jps as a provider answering every item with "value" (its inbox read in a group, so
    the hub reports its inbox lag)."""

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        return dict.fromkeys(request.items, "value")

    return ProviderService(
        "jps", env.keys("jps"), env.kafka_of("jps"), env.topics, handler,
        hub_public_key=env.hub_key,
    )  # fmt: skip


async def test_exchange_answers_with_sealed_values(env: HubEnv) -> None:
    people = generate_population(3, seed=11)
    await register_all(env, people)
    city_code, jps_code = await enrolled_pair(env, people[0])
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    seen: list[ForwardedRequest] = []

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        seen.append(request)
        return {item: f"value of {item}" for item in request.items}

    provider = ProviderService(
        "jps",
        env.keys("jps"),
        env.kafka_of("jps"),
        env.topics,
        handler,
        hub_public_key=env.hub_key,
    )
    async with provider, client(env, "city-shinagawa") as city:
        values = await city.request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
        )
        # Long-lived data: the hybrid post-quantum suite, selected per request.
        hybrid = await city.request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1],
            suite="MLKEM768_X25519",
        )  # fmt: skip
    assert values == {items[0]: f"value of {items[0]}"}
    assert hybrid == values
    # The provider saw the person under its own code, never the requester's.
    assert [r.provider_link_code for r in seen] == [jps_code, jps_code]
    assert [r.hpke_suite for r in seen] == [HpkeSuite.X25519, HpkeSuite.MLKEM768_X25519]
    assert seen[0].requester == "city-shinagawa"
    # The hub recorded metadata only: the value never appears in the audit trail.
    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: any(isinstance(m, AuditRecord) and m.step is AuditStep.ANSWERED for m in got),
    )  # fmt: skip
    raw = await read_topic(
        env.kafka, env.topics.audit, lambda got: len(got) >= len(audit), decode=False
    )
    assert all(b"value of" not in r.value for r in raw)


async def test_refusals_are_typed_answers(env: HubEnv) -> None:
    people = generate_population(3, seed=13)
    await register_all(env, people)
    city_code, _ = await enrolled_pair(env, people[0])
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    async with client(env, "city-shinagawa") as city:

        async def refused(**overrides: Any) -> ErrorCode:
            call = {"link_code": city_code, "provider": "jps", "scenario_id": scenario,
                    "items": items[:1], **overrides}  # fmt: skip
            with pytest.raises(HubRefusedError) as caught:
                await city.request(**call)
            return ErrorCode(caught.value.code)

        assert await refused(scenario_id="S999") is ErrorCode.UNKNOWN_SCENARIO
        assert await refused(items=("pension.not-an-item",)) is ErrorCode.ITEM_NOT_PERMITTED
        assert await refused(provider="jasso") is ErrorCode.SCENARIO_MISMATCH
        forged = city_code[:-3] + ("aaa" if city_code[-3:] != "aaa" else "bbb")
        assert await refused(link_code=forged) is ErrorCode.INVALID_LINK_CODE
        # Another agency's code is refused too: codes only authenticate for their agency.
        async with client(env, "jps") as jps:
            jps_code = (await jps.enrol("J-x", my_number=people[0].my_number)).link_code
        assert await refused(link_code=jps_code) is ErrorCode.INVALID_LINK_CODE
        # A person the provider does not hold.
        lone = (await city.enrol("S-2", my_number=people[1].my_number)).link_code
        assert await refused(link_code=lone) is ErrorCode.PROVIDER_DOES_NOT_HOLD

    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: sum(isinstance(m, AuditRecord) and m.step is AuditStep.REFUSED for m in got) >= 6,  # noqa: E501
    )  # fmt: skip
    codes = sorted(
        str(m.error_code)
        for m in audit
        if isinstance(m, AuditRecord) and m.step is AuditStep.REFUSED
    )
    assert codes == sorted([
        "UNKNOWN_SCENARIO", "ITEM_NOT_PERMITTED", "SCENARIO_MISMATCH",
        "INVALID_LINK_CODE", "INVALID_LINK_CODE", "PROVIDER_DOES_NOT_HOLD",
    ])  # fmt: skip


async def test_provider_declines_and_deadline_times_out(env: HubEnv) -> None:
    people = generate_population(2, seed=17)
    await register_all(env, people)
    city_code, _ = await enrolled_pair(env, people[0])
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    async with client(env, "city-shinagawa") as city:
        # Nobody serves jps yet: the hub ends the request with a typed TIMEOUT.
        with pytest.raises(HubRefusedError) as caught:
            await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1],
                deadline_s=1.5,
            )  # fmt: skip
        assert caught.value.code is ErrorCode.TIMEOUT

        async def no_data(request: ForwardedRequest) -> None:
            return None

        provider = ProviderService("jps", env.keys("jps"), env.kafka_of("jps"), env.topics,
                                   no_data, group_id=f"{env.topics.prefix}agency.jps.late",
                                   hub_public_key=env.hub_key)  # fmt: skip
        async with provider:
            with pytest.raises(ProviderDeclinedError):
                await city.request(
                    link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
                )
    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: any(isinstance(m, AuditRecord) and m.step is AuditStep.TIMED_OUT for m in got),
    )  # fmt: skip
    assert any(isinstance(m, AuditRecord) and m.step is AuditStep.TIMED_OUT for m in audit)


async def test_malformed_bytes_go_to_dead_letters_and_traffic_continues(env: HubEnv) -> None:
    people = generate_population(2, seed=19)
    await register_all(env, people)
    producer = AIOKafkaProducer(**env.kafka_of("jps"))  # jps's own topic: it may write it
    await producer.start()
    try:
        await producer.send_and_wait(env.topics.agency_out("jps"), b"\xc3\x01garbage-bytes")
        await producer.send_and_wait(env.topics.agency_out("jps"), b"not avro at all")
    finally:
        await producer.stop()
    async with client(env, "jps") as jps:
        # The hub is still serving: a good message right after the bad ones is answered.
        result = await jps.enrol("J-after", my_number=people[0].my_number)
        assert result.outcome is EnrolmentOutcome.LINKED
    letters = await read_topic(env.kafka, env.topics.deadletter, lambda got: len(got) >= 2)
    assert all(isinstance(m, DeadLetter) for m in letters)
    assert {m.reason for m in letters} == {ErrorCode.MALFORMED_MESSAGE}
    # Sealed to the operators: only their key gives the input back.
    operators = env.keys("operator").sealing
    opened = {open_letter(m, operators).value for m in letters}
    assert opened == {b"\xc3\x01garbage-bytes", b"not avro at all"}
    assert not {m.value for m in letters} & opened


async def test_bad_signature_is_refused(env: HubEnv) -> None:
    people = generate_population(2, seed=23)
    await register_all(env, people)
    # jasso's client signs with city-osaka's key: the hub must refuse it.
    impostor = AgencyClient(
        "jasso", env.keys("jasso"), env.kafka_of("jasso"), env.topics, hub_public_key=env.hub_key
    )
    impostor.keys = AgencyKeys("jasso", env.keys("city-osaka").signing, env.keys("jasso").sealing)
    async with impostor:
        with pytest.raises(HubRefusedError) as caught:
            await impostor.enrol("X-1", my_number=people[0].my_number, timeout_s=20)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    await asyncio.sleep(0)


async def test_late_answer_and_deenrolled_requester(env: HubEnv) -> None:
    people = generate_population(2, seed=31)
    await register_all(env, people)
    city_code, _ = await enrolled_pair(env, people[0])
    scenario, items = scenario_between(env, "city-shinagawa", "jps")

    async def slow(request: ForwardedRequest) -> dict[str, Any]:
        await asyncio.sleep(2.5)  # past the 1.5 s deadline
        return dict.fromkeys(request.items, "too late")

    provider = ProviderService(
        "jps", env.keys("jps"), env.kafka_of("jps"), env.topics, slow, hub_public_key=env.hub_key
    )
    async with provider, client(env, "city-shinagawa") as city:
        with pytest.raises(HubRefusedError) as caught:
            await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1],
                deadline_s=1.5,
            )  # fmt: skip
        assert caught.value.code is ErrorCode.TIMEOUT  # exactly one answer: the timeout
        audit = await read_topic(
            env.kafka, env.topics.audit,
            lambda got: any(isinstance(m, AuditRecord) and m.step is AuditStep.LATE_ANSWER for m in got),  # noqa: E501
        )  # fmt: skip
        assert sum(isinstance(m, AuditRecord) and m.step is AuditStep.TIMED_OUT for m in audit) == 1

        # After de-enrolling, the city's genuine code no longer entitles it to ask.
        await city.deenrol(city_code, "S-9")
        with pytest.raises(HubRefusedError) as caught:
            await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
            )
        assert caught.value.code is ErrorCode.NOT_ENROLLED
