"""Fuzzing the hub's per-record path: hostile records between genuine ones, in memory.

Each example is one batch through :meth:`Hub.handle` (the in-memory hub of
``tests/unit/hub_world.py``, strict signatures): a genuine enrolment by ``jps``, a
hostile record, a genuine attribute request by ``city-shinagawa``. The hostile record is
a mutation of a genuine message (agencies' requests, answers and enrolments, the hub's own
message types, registry events, directory entries, control commands) on one of the
topics the hub reads, or a genuine message with one field rewritten; a good part of them
are re-signed by the topic's owner under a fresh id, so they are schema-valid,
authenticated hostile messages.

Whatever it is: no defect of the hub's (``INTERNAL``) and no exception; both genuine
messages get exactly their one answer; and the record is accounted for by audit records
of its own. Unless it is authentic (its writer's genuine signature), those are refusals
or dead letters with a typed code, and the hub writes to nobody for it but its sender. A
genuine entry, command or registry event of a pinned root may be applied without a word.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, note

from hub_stream.control import CommandError, RotateKey, control_topic, parse_command
from hub_stream.outputs import Output
from hub_stream.trust import Untrusted, admit_entry
from renkei.crypto import AgencyKeys
from renkei.envelope import encode_signed, sign_message, verify_bytes
from renkei.errors import DecodeError, SignatureError
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import SENDERS, directory_entries
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AuditRecord,
    AuditStep,
    DeadLetter,
    DeenrolmentRequest,
    EnrolmentOutcome,
    EnrolmentResult,
    ErrorCode,
    ForwardedRequest,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ScenarioEntry,
)
from tests.samples import sample_messages
from tests.security.fuzzing import entropy, fuzz_settings, hostile, rewrite
from tests.unit.hub_world import NUMBERS, Record, World, codes_of

CODEC = default_codec()
VALID_PERSON, SEED_PERSON = NUMBERS[0], NUMBERS[1]
OSAKA = "city-osaka"  # the hostile records' sender


class _World(World):
    """The in-memory hub's world, each key file read once (the loop signs thousands)."""

    _loaded: dict[str, AgencyKeys]

    def keys(self, agency: str) -> AgencyKeys:
        loaded: dict[str, AgencyKeys] = self.__dict__.setdefault("_loaded", {})
        if agency not in loaded:
            loaded[agency] = super().keys(agency)
        return loaded[agency]


class Fixture:
    """The world, the genuine codes of the valid traffic, and the seeds per topic."""

    def __init__(self, key_dir: Path) -> None:
        self.world = w = _World(key_dir)
        t = w.topics
        w.run(w.registration("10000000000", VALID_PERSON))
        w.run(w.registration("20000000000", SEED_PERSON))
        (self.city,) = codes_of(w.run(w.enrolment("city-shinagawa", VALID_PERSON)))
        (self.jps,) = codes_of(w.run(w.enrolment("jps", VALID_PERSON)))
        # The seeds' person is held by the attacker, the victim and the provider.
        code = {a: self._enrol(a) for a in ("city-osaka", "city-shinagawa", "jps")}
        (forward,) = (m for m in w.run(w.request(code["city-shinagawa"], "seed"))
                      if isinstance(m, ForwardedRequest))  # fmt: skip
        ends = DeenrolmentRequest(header=Header.new(OSAKA), link_code=code[OSAKA], record_ref="r")
        genuine = [
            w.enrolment(OSAKA, SEED_PERSON).value or b"",
            self._signed(ends),
            self._signed(self._request(code[OSAKA])),
            w.answer(forward).value or b"",
        ]
        agency = [
            *genuine, *genuine, *genuine,  # as likely as all the others together
            # what only the hub writes, and messages of every other type
            self._signed(forward.model_copy(update={"header": Header.new(OSAKA)})),
            *(self._signed(m) for m in sample_messages()),
        ]  # fmt: skip
        operator = w.keys("operator").signing
        file = load_directory_file()
        ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
        entries = directory_entries(file, {i: w.keys(i).public() for i in ids}, SENDERS)
        rotate = RotateKey(agency_id="jasso", grace_ms=1000).signed(operator)
        self.seeds: dict[str, list[bytes]] = {
            t.agency_out(OSAKA): agency,
            t.agency_out("jps"): agency,
            t.agency_out("nobody"): agency,  # an agency the directory does not know
            t.registry_events: [
                w.move("20000000000", "新住所").value or b"",
                w.registration("30000000000", NUMBERS[2]).value or b"",
            ],
            t.directory: [CODEC.encode(sign_message(e, operator, CODEC)) for e in entries[:6]],
            control_topic(t): [rotate.to_bytes()],
        }
        self.topics = sorted(self.seeds)
        # What a rewritten field may become: everything a hostile agency could know of.
        items = [i for e in entries if isinstance(e, ScenarioEntry) for i in e.items]
        self.palette: list[object] = [
            *ids, "hub", "nobody", *code.values(), code[OSAKA][:-1] + "a", forward.hub_request_id,
            *(f"S{n:03}" for n in range(12)), *items, NUMBERS[2], "山田花子",
            w.reply.public_bytes, w.keys("jps").sealing.public_bytes,
        ]  # fmt: skip

    def _enrol(self, agency: str) -> str:
        (code,) = codes_of(self.world.run(self.world.enrolment(agency, SEED_PERSON)))
        return code

    def _signed(self, message: Message, sender: str = OSAKA) -> bytes:
        return encode_signed(message, self.world.keys(sender).signing, CODEC)

    def _request(self, code: str) -> AttributeRequest:
        header = Header.new(OSAKA)
        return AttributeRequest(
            header=header, request_id=f"r-{header.message_id}", requester_link_code=code,
            provider="jps", scenario_id="S004", items=("pension.benefit_status",),
            reply_public_key=self.world.reply.public_bytes, hpke_suite=HpkeSuite.X25519,
            deadline=header.sent_at + timedelta(hours=1),
        )  # fmt: skip


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("router") / "keys")


def owner(fx: Fixture, topic: str) -> str | None:
    """Who may sign what goes on ``topic``, for the re-signing of decodable mutations."""
    t = fx.world.topics
    if topic == t.registry_events:
        return "registry"
    if topic in (t.directory, control_topic(t)):
        return None  # trusted content: the directory fuzz tests take it apart
    agency = t.agency_of(topic)
    return agency if agency != "nobody" else OSAKA


def schema_valid(fx: Fixture, rng: random.Random, topic: str, value: bytes) -> bytes:
    """Often a schema-valid message instead, sent under a fresh id with its owner's
    signature: ``value`` if it decodes, or a genuine seed with one field rewritten."""
    signer = owner(fx, topic)
    roll = rng.random()
    if signer is None or roll < 0.3:
        return value
    try:
        message = CODEC.decode(value if roll < 0.5 else rng.choice(fx.seeds[topic]))
    except DecodeError:
        return value
    if roll >= 0.5:
        message = rewrite(rng, message, fx.palette) or message
    sender = signer if signer == "registry" else fx.world.topics.agency_of(topic)
    header = message.header.model_copy(
        update={"sender": sender, "message_id": f"{rng.getrandbits(128):032x}"}
    )
    resigned = message.model_copy(update={"header": header})
    return encode_signed(resigned, fx.world.keys(signer).signing, CODEC)


def authentic(fx: Fixture, record: Record) -> bool:
    """A genuine message of whoever may write the topic: an agency of the directory on its
    own ``.out``, signed with its key; or a pinned root's entry, command or event."""
    t, value, hub = fx.world.topics, record.value or b"", fx.world.hub
    if record.topic == t.directory:
        try:
            admit_entry(CODEC, hub.roots, record.key, value)
        except Untrusted:
            return False
        return True
    if record.topic == control_topic(t):
        try:
            parse_command(value).verify(hub.roots.operator)
        except (CommandError, SignatureError):
            return False
        return True
    writer = "registry" if record.topic == t.registry_events else t.agency_of(record.topic)
    entry = hub.directory.agency(writer)
    key = hub.roots.registry if writer == "registry" else entry and entry.signing_public_key
    try:
        message = CODEC.decode(value)
        verify_bytes(value, key or b"", CODEC)
    except (DecodeError, SignatureError):
        return False
    return message.header.sender == writer


def decoded(outputs: list[Output], topic: str) -> Iterator[Message]:
    for out in outputs:
        if out.topic == topic and out.value is not None:
            yield CODEC.decode(out.value)


@fuzz_settings("router")
@given(entropy())
def test_hostile_records_never_harm_the_genuine_ones(fx: Fixture, rng: random.Random) -> None:
    w, t = fx.world, fx.world.topics
    topic = rng.choice(fx.topics)
    seeds = fx.seeds[topic]
    value = schema_valid(fx, rng, topic, hostile(rng, seeds))
    key = rng.choice([None, b"agency/jps", b"x" * 600])  # the directory's keys, one too long
    note(f"{topic} key={key!r} value={value.hex()}")

    enrol = w.enrolment("jps", VALID_PERSON)
    bad = dataclasses.replace(w.record(topic, value), key=key)
    ask = w.request(fx.city, f"v-{rng.getrandbits(64)}")
    outputs = w.hub.handle([enrol, bad, ask])
    w.hub.commit()

    audit = [a for a in decoded(outputs, t.audit) if isinstance(a, AuditRecord)]
    letters = [m for m in decoded(outputs, t.deadletter) if isinstance(m, DeadLetter)]
    to_agencies = [m for out in outputs if out.topic.startswith(f"{t.prefix}agency.")
                   for m in decoded([out], out.topic)]  # fmt: skip
    enrol_id, ask_id = (CODEC.decode(r.value or b"").header.message_id for r in (enrol, ask))
    # No defect of the hub's, whatever the record was.
    assert ErrorCode.INTERNAL not in {m.reason for m in letters}
    assert not [m for m in to_agencies if isinstance(m, HubError) and m.code is ErrorCode.INTERNAL]
    assert "INTERNAL" not in {a.error_code for a in audit}
    # The genuine enrolment and request get exactly their one answer each.
    results = [m for m in to_agencies if m.header.correlation_id == enrol_id]
    assert [
        (type(m), getattr(m, "outcome", None), getattr(m, "link_code", None)) for m in results
    ] == [(EnrolmentResult, EnrolmentOutcome.LINKED, fx.jps)]
    forwards = [m for m in to_agencies if m.header.correlation_id == ask_id]
    assert [type(m) for m in forwards] == [ForwardedRequest]
    assert [a.step for a in audit if a.header.correlation_id == ask_id] == [AuditStep.FORWARDED]
    # The hostile record is accounted for in the audit trail: refused or dead-lettered
    # with a typed code unless it is authentic, and it makes the hub write to no one but
    # its sender.
    own = [a for a in audit if a.header.correlation_id not in (enrol_id, ask_id)]
    genuine = authentic(fx, bad)
    assert own or (genuine and topic in (t.directory, control_topic(t), t.registry_events))
    if not genuine:
        assert {a.step for a in own} <= {AuditStep.REFUSED, AuditStep.DEAD_LETTERED}
        assert {a.error_code for a in own} <= set(ErrorCode.__members__)
        sender_inbox = t.agency_in(t.agency_of(topic)) if topic.endswith(".out") else None
        strays = [m for out in outputs if out.topic.startswith(f"{t.prefix}agency.")
                  and out.topic != sender_inbox for m in decoded([out], out.topic)
                  if m.header.correlation_id not in (enrol_id, ask_id)]  # fmt: skip
        assert strays == []
