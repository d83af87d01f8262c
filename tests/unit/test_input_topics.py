"""The hub loop reads its topics by name, the directory's agencies, and subscribes again
before the next poll once the directory lists another agency."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRebalanceListener, TopicPartition

from hub_stream.directory import Directory
from hub_stream.subscription import DrainOnRevoke, InputTopics, follow
from renkei.errors import ConfigurationError
from renkei.topics import Topics
from schemas.models import AgencyEntry, Header
from tests.unit.loops import offline_loop

TOPICS = Topics("t.")
FIXED = (TOPICS.registry_events, TOPICS.control, TOPICS.directory)


def entry(agency_id: str, active: bool = True, name: str = "") -> AgencyEntry:
    return AgencyEntry(
        header=Header.new("operator"), agency_id=agency_id, name=name or agency_id,
        name_ja=agency_id, signing_public_key=b"k" * 32, sealing_public_key=b"", entitled_events=(),
        active=active,
    )  # fmt: skip


class Consumer:
    """Records what the loop subscribes to; each poll runs the test's next step."""

    def __init__(self, steps: list[Any]) -> None:
        self.subscribed: list[list[str]] = []
        self.steps = steps

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self.subscribed.append(topics)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.steps.pop(0)()
        return {}

    async def stop(self) -> None: ...


def test_the_topics_are_the_fixed_ones_and_every_listed_agencys_not_the_signers() -> None:
    directory = Directory()
    for agency in (entry("jps"), entry("retired", active=False), entry("operator"),
                   entry("registry"), entry("hub")):  # fmt: skip
        directory.apply(agency)
    inputs = InputTopics(FIXED, lambda: directory, TOPICS.agency_out)
    assert inputs.names() == sorted(
        [*FIXED, TOPICS.agency_out("jps"), TOPICS.agency_out("retired")]
    ), "a retired agency is still read: what it sends is refused, not left unread"


def test_follow_subscribes_again_only_when_the_directory_lists_another_agency() -> None:
    directory = Directory()
    directory.apply(entry("jps"))
    inputs = InputTopics(FIXED, lambda: directory, TOPICS.agency_out)
    consumer = Consumer([])
    listener = DrainOnRevoke(noop)
    inputs.names()  # what the loop subscribed at start
    follow(consumer, inputs, listener)
    directory.apply(entry("jps", name="renamed"))  # an update: no new topic
    follow(consumer, inputs, listener)
    assert consumer.subscribed == []
    directory.apply(entry("jasso"))
    follow(consumer, inputs, listener)
    follow(consumer, inputs, listener)
    assert consumer.subscribed == [
        sorted([*FIXED, TOPICS.agency_out("jasso"), TOPICS.agency_out("jps")])
    ]


async def test_the_running_loop_subscribes_to_an_agency_enrolled_meanwhile() -> None:
    directory = Directory()
    directory.apply(entry("jps"))
    inputs = InputTopics(FIXED, lambda: directory, TOPICS.agency_out)
    loop = offline_loop(inputs=inputs, poll_ms=1)  # its consumer replaced by a fake below
    inputs.names()  # as start() subscribed
    for writer in loop._transactions.writers:
        await writer.stop()  # never started; closed so that nothing leaks
    await loop._consumer.stop()
    consumer = Consumer([lambda: directory.apply(entry("jasso")), loop.halt])
    loop._consumer = consumer
    loop._running = True
    await loop.run()
    assert consumer.subscribed == [
        sorted([*FIXED, TOPICS.agency_out("jasso"), TOPICS.agency_out("jps")])
    ], "subscribed again before the poll after the directory grew"


def test_a_loop_without_any_input_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs its input"):
        offline_loop()


async def noop() -> None: ...
