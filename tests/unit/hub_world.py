"""A hub in memory, fed consumer records by hand: the unit tests' way to run its flows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from hub_stream.control import RotateKey, control_topic
from hub_stream.hub import Hub
from hub_stream.outputs import Output
from hub_stream.rotation import StagedKeyRing
from hub_stream.settings import HubSettings
from producers.registry_publisher import event_message_id
from renkei.crypto import AgencyKeys, MasterSecret, SealingKeyPair, keystore
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import SENDERS, directory_entries, init_keys
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    Basic4,
    EnrolmentRequest,
    EnrolmentResult,
    EventAction,
    EventBody,
    EventKind,
    ForwardedRequest,
    Header,
    HpkeSuite,
    Message,
    PersonMoved,
    PersonRegistered,
    ProviderResponse,
    RegistryEvent,
    ResponseStatus,
)

B4 = Basic4(name="山田太郎", name_kana="ヤマダタロウ", birth_date=date(1980, 1, 2), address="住所0")
NUMBER = "123456789018"
NUMBERS = ["123456789018", "000000000019", "111111111118"]
DAY = date(2026, 4, 1)
PENSION = ("pension.benefit_status",)  # scenario S003: city-shinagawa asks jps


def event(
    event_id: str,
    kind: EventKind,
    body: EventBody | None,
    action: EventAction = EventAction.ORIGINAL,
    corrects: str | None = None,
    resident_code: str = "12345678901",
) -> RegistryEvent:
    return RegistryEvent(
        header=Header.new("registry", message_id=event_message_id(event_id)),
        event_id=event_id, resident_code=resident_code, kind=kind, action=action,
        corrects_event_id=corrects, effective_date=DAY, body=body,
    )  # fmt: skip


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord the hub reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0


class World:
    """A hub with the sample directory, in memory, and helpers to feed it.

    Every record gets the next offset of its topic and the next timestamp, so records
    are "produced" in the order the test builds them.
    """

    def __init__(self, key_dir: Path) -> None:
        init_keys(key_dir)
        self.key_dir = key_dir
        self.topics = Topics("u.")
        self.codec = default_codec()
        master = MasterSecret.from_file(key_dir / "master.key")
        settings = HubSettings(signatures="strict", key_dir=key_dir)
        try:
            hub_key = keystore.load_hub_signing_key(key_dir)
        except ConfigurationError:
            hub_key = keystore.create_hub_signing_key(key_dir)
        self.hub = Hub(self.topics, StagedKeyRing(master), hub_key, settings)
        file = load_directory_file()
        ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
        public = {i: keystore.load(key_dir, i).public() for i in ids}
        for entry in directory_entries(file, public, SENDERS):
            self.hub.directory.apply(entry)
        self.offsets: dict[str, int] = {}
        self.clock = 1_700_000_000_000
        self.reply = SealingKeyPair.generate()

    def keys(self, agency: str) -> AgencyKeys:
        return keystore.load(self.key_dir, agency)

    def record(self, topic: str, value: bytes) -> Record:
        self.offsets[topic] = offset = self.offsets.get(topic, -1) + 1
        self.clock += 1
        return Record(topic, 0, offset, None, value, self.clock)

    def signed(self, topic: str, message: Message, sender: str) -> Record:
        return self.record(
            topic, self.codec.encode(sign_message(message, self.keys(sender).signing, self.codec))
        )

    def registration(self, resident_code: str, number: str) -> Record:
        body = PersonRegistered(my_number=number, basic4=B4.model_copy(update={"address": number}))
        e = event(f"reg-{resident_code}", EventKind.REGISTERED, body, resident_code=resident_code)
        return self.signed(self.topics.registry_events, e, "registry")

    def move(self, resident_code: str, address: str) -> Record:
        e = event(
            f"move-{resident_code}-{address}", EventKind.MOVED, PersonMoved(address=address),
            resident_code=resident_code,
        )  # fmt: skip
        return self.signed(self.topics.registry_events, e, "registry")

    def enrolment(self, agency: str, number: str) -> Record:
        request = EnrolmentRequest(
            header=Header.new(agency), record_ref=f"{agency}-{number}", my_number=number,
            capacity="",
        )  # fmt: skip
        return self.signed(self.topics.agency_out(agency), request, agency)

    def request(self, link_code: str, request_id: str = "r1", deadline_s: int = 3600) -> Record:
        """city-shinagawa asks jps for the pension status (scenario S003)."""
        header = Header.new("city-shinagawa")
        request = AttributeRequest(
            header=header, request_id=request_id, requester_link_code=link_code,
            provider="jps", scenario_id="S003", items=PENSION,
            reply_public_key=self.reply.public_bytes, hpke_suite=HpkeSuite.X25519,
            deadline=header.sent_at + timedelta(seconds=deadline_s),
        )  # fmt: skip
        return self.signed(self.topics.agency_out("city-shinagawa"), request, "city-shinagawa")

    def answer(self, forwarded: ForwardedRequest) -> Record:
        """jps answers a forwarded request (no data: nothing needs sealing)."""
        response = ProviderResponse(
            header=Header.new("jps", forwarded.header.message_id),
            hub_request_id=forwarded.hub_request_id,
            provider_link_code=forwarded.provider_link_code,
            status=ResponseStatus.NO_DATA, detail="",
        )  # fmt: skip
        return self.signed(self.topics.agency_out("jps"), response, "jps")

    def rotation(self, agency: str, grace_ms: int = 60_000) -> Record:
        command = RotateKey(agency_id=agency, grace_ms=grace_ms).signed(
            self.keys("operator").signing
        )
        return self.record(control_topic(self.topics), command.to_bytes())

    def run(self, *records: Record, commit: bool = True) -> list[Message]:
        outputs = self.hub.handle(records)
        if commit:
            self.hub.commit()
        else:
            self.hub.rollback()
        return list(self.decoded(outputs))

    def decoded(self, outputs: list[Output]) -> Iterator[Message]:
        for out in outputs:
            if out.value is not None and out.topic.startswith(self.topics.prefix + "agency."):
                yield self.codec.decode(out.value)


def codes_of(messages: list[Message]) -> list[str]:
    return [m.link_code for m in messages if isinstance(m, EnrolmentResult) and m.link_code]
