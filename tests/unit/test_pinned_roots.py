"""Pinned roots: the operators' and the registry's keys come from the hub's configuration.

Every directory entry, control command and registry event is checked against them, in
both signature modes; whatever the directory says about the operators or the registry
changes nothing; what does not verify is never obeyed, and is parked and audited.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from hub_stream.control import RotateKey, control_topic
from hub_stream.directory import Directory, entry_key
from hub_stream.directory_feed import DirectoryFeed
from hub_stream.settings import HubSettings
from hub_stream.trust import PinnedRoots, admit_entry, load_roots
from renkei.crypto import SigningKey, keystore
from renkei.crypto.bundles import bundle_path
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError
from schemas.codec import default_codec
from schemas.models import (
    AgencyEntry,
    AuditRecord,
    AuditStep,
    DeadLetter,
    EnrolmentOutcome,
    EnrolmentResult,
    ErrorCode,
    Header,
    HubError,
    ScenarioEntry,
)
from tests.unit.hub_world import NUMBERS, World, codes_of

CODEC = default_codec()
ATTACKER = SigningKey.generate()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def entry_for(world: World, agency_id: str, signing_key: bytes) -> AgencyEntry:
    current = world.hub.directory.agencies[agency_id]
    return current.model_copy(
        update={"header": Header.new("operator"), "signing_public_key": signing_key}
    )


def scenario(world: World) -> ScenarioEntry:
    """A made-up scenario: jasso may ask jps for the pension status."""
    return ScenarioEntry(
        header=Header.new("operator"), scenario_id="S999", legal_basis="none", duty="x",
        duty_ja="x", requester="jasso", provider="jps", items=("pension.benefit_status",),
        active=True,
    )  # fmt: skip


def encoded(entry: AgencyEntry | ScenarioEntry, key: SigningKey | None) -> bytes:
    return CODEC.encode(sign_message(entry, key, CODEC) if key is not None else entry)


def feed(world: World) -> DirectoryFeed:
    hub = world.hub
    return DirectoryFeed(
        world.topics.directory, lambda: hub.directory, CODEC, hub.roots, hub.metrics,
        keystore.load_hub_signing_key(world.key_dir).public_bytes,
    )  # fmt: skip


def letters_and_audit(world: World, outputs: list[Any]) -> tuple[list[DeadLetter], list[Any]]:
    letters = [
        CODEC.decode_as(o.value, DeadLetter) for o in outputs if o.topic.endswith("deadletter")
    ]
    audit = [CODEC.decode(o.value) for o in outputs if o.topic == world.topics.audit]
    return letters, [a for a in audit if isinstance(a, AuditRecord)]


# -- where the roots come from ----------------------------------------------------------


def test_roots_default_to_the_bundles_in_the_key_folder(world: World) -> None:
    roots = load_roots(HubSettings(key_dir=world.key_dir))
    operator = keystore.load(world.key_dir, "operator")
    assert roots.operator == operator.signing.public_bytes
    assert roots.registry == keystore.load(world.key_dir, "registry").signing.public_bytes
    assert roots.operator_sealing == ("X25519", operator.sealing.public_bytes)


def test_roots_from_other_files_and_from_base64(world: World, tmp_path: Path) -> None:
    other = tmp_path / "pinned"
    other.mkdir()
    (other / "ops.json").write_bytes(bundle_path(world.key_dir, "operator").read_bytes())
    registry = keystore.load(world.key_dir, "registry").signing.public_bytes
    settings = HubSettings(
        key_dir=tmp_path / "empty", operator_public_key_file=other / "ops.json",
        registry_public_key=base64.b64encode(registry).decode(),
    )  # fmt: skip
    roots = load_roots(settings)
    assert roots.registry == registry
    assert roots.operator == keystore.load(world.key_dir, "operator").signing.public_bytes


def test_an_operators_key_in_base64_has_nothing_to_seal_to(world: World) -> None:
    operator = keystore.load(world.key_dir, "operator").signing.public_bytes
    settings = HubSettings(
        key_dir=world.key_dir, operator_public_key=base64.b64encode(operator).decode()
    )
    assert load_roots(settings).operator_sealing is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "RENKEI_HUB_OPERATOR_PUBLIC_KEY_FILE"),
        ({"operator_public_key": "bm90IGEga2V5"}, "not a base64 Ed25519 public key"),
        ({"operator_public_key": "AAAA", "operator_public_key_file": "x"}, "not both"),
    ],
)
def test_a_missing_or_bad_root_is_a_configuration_error(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_roots(HubSettings(key_dir=tmp_path, **settings))


def test_another_partys_bundle_is_refused_as_a_root(world: World) -> None:
    settings = HubSettings(
        key_dir=world.key_dir, operator_public_key_file=bundle_path(world.key_dir, "jps")
    )
    with pytest.raises(ConfigurationError, match="bundle of 'jps'"):
        load_roots(settings)


# -- the directory: only what the operators signed is obeyed ---------------------------


def test_the_feed_applies_signed_entries_and_ignores_everything_else(world: World) -> None:
    directory_feed, operator = feed(world), world.keys("operator").signing
    made_up = scenario(world)
    jps = entry_for(world, "jps", ATTACKER.public_bytes)
    bad = [
        (b"scenario/S999", b"\x00garbage"),  # not our wire format
        (b"scenario/S999", b"\xc3\x01" + b"\x07" * 8),  # an unknown fingerprint
        (b"scenario/S999", encoded(made_up, None)),  # unsigned
        (b"scenario/S999", encoded(made_up, ATTACKER)),  # signed by someone else
        (b"agency/jps", encoded(jps, ATTACKER)),  # a swapped agency key
        (b"agency/jps", encoded(jps, world.keys("jps").signing)),  # the agency's own key
        (b"scenario/S000", encoded(made_up, operator)),  # under another entry's key
        (b"agency/jps", None),  # a tombstone cannot be signed
    ]
    for key, value in bad:
        assert directory_feed.apply(key, value) is False
    assert world.hub.directory.scenario("S999") is None
    assert world.hub.directory.agencies["jps"].signing_public_key != ATTACKER.public_bytes
    assert directory_feed.ignored == len(bad) - 1  # the tombstone is no refusal
    assert world.hub.metrics["directory_ignored.BAD_SIGNATURE"] == 4
    assert world.hub.metrics["directory_ignored.MALFORMED_MESSAGE"] == 3
    assert directory_feed.apply(b"scenario/S999", encoded(made_up, operator)) is True
    assert world.hub.directory.scenario("S999") is not None


def test_the_feed_refuses_other_senders_and_other_messages(world: World) -> None:
    directory_feed, operator = feed(world), world.keys("operator").signing
    as_jps = scenario(world).model_copy(update={"header": Header.new("jps")})
    error = HubError(
        header=Header.new("operator"), code=ErrorCode.INTERNAL, detail="", request_id=None,
        retriable=False,
    )  # fmt: skip
    assert not directory_feed.apply(b"scenario/S999", encoded(as_jps, operator))
    assert not directory_feed.apply(b"scenario/S999", encoded(error, operator))  # type: ignore[arg-type]  # deliberately no entry
    assert world.hub.metrics["directory_ignored.BAD_SIGNATURE"] == 1
    assert world.hub.metrics["directory_ignored.MALFORMED_MESSAGE"] == 1
    assert world.hub.directory.scenario("S999") is None


def test_a_defect_in_the_feed_ignores_the_record_and_never_raises(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub_stream import directory_feed as module

    def broken(*_: object) -> None:
        raise RuntimeError("a defect of ours")

    monkeypatch.setattr(module, "admit_entry", broken)
    directory_feed = feed(world)
    assert directory_feed.apply(b"scenario/S999", b"anything", "0:7") is False
    assert world.hub.metrics["directory_ignored.INTERNAL"] == 1
    assert directory_feed.ignored == 1


def test_an_unsigned_scenario_written_to_the_directory_allows_nothing(world: World) -> None:
    world.hub.directory = Directory()  # the directory as a starting worker restores it
    directory_feed, operator = feed(world), world.keys("operator").signing
    from renkei.operator.directory_file import load_directory_file
    from renkei.operator.publish import SENDERS, directory_entries

    file = load_directory_file()
    ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
    public = {i: keystore.load(world.key_dir, i).public() for i in ids}
    for entry in directory_entries(file, public, SENDERS):
        assert directory_feed.apply(entry_key(entry), encoded(entry, operator))
    directory_feed.apply(b"scenario/S999", encoded(scenario(world), None))
    world.run(world.registration("10000000000", NUMBERS[0]))
    (jasso,) = codes_of(world.run(world.enrolment("jasso", NUMBERS[0])))
    world.run(world.enrolment("jps", NUMBERS[0]))
    request = world.request(jasso).value
    assert request is not None
    message = CODEC.decode(request).model_copy(
        update={"header": Header.new("jasso"), "scenario_id": "S999"}
    )
    (refusal,) = world.run(world.signed(world.topics.agency_out("jasso"), message, "jasso"))
    assert isinstance(refusal, HubError)
    assert refusal.code is ErrorCode.UNKNOWN_SCENARIO


def test_the_hubs_own_entry_is_verified_like_every_other(world: World) -> None:
    hub_entry = AgencyEntry(
        header=Header.new("operator"), agency_id="hub", name="hub", name_ja="hub",
        signing_public_key=ATTACKER.public_bytes, sealing_public_key=b"", entitled_events=(),
        active=True,
    )  # fmt: skip
    with pytest.raises(Exception, match="BAD_SIGNATURE"):
        admit_entry(CODEC, world.hub.roots, b"agency/hub", encoded(hub_entry, None))
    assert feed(world).apply(b"agency/hub", encoded(hub_entry, ATTACKER)) is False
    assert "hub" not in world.hub.directory.agencies


def test_the_loop_parks_and_audits_a_directory_record_nobody_signed(world: World) -> None:
    made_up = scenario(world)
    unsigned = world.record(world.topics.directory, encoded(made_up, None))
    signed = world.record(world.topics.directory, encoded(made_up, world.keys("operator").signing))
    garbage = world.record(world.topics.directory, b"\x00garbage")
    for record, key in ((unsigned, b"scenario/S999"), (signed, b"scenario/S999"), (garbage, None)):
        record.key = key
    outputs = world.hub.handle([unsigned, signed, garbage])
    world.hub.commit()
    letters, audit = letters_and_audit(world, outputs)
    assert [(x.source_offset, x.reason) for x in letters] == [
        (0, ErrorCode.BAD_SIGNATURE), (2, ErrorCode.MALFORMED_MESSAGE),
    ]  # fmt: skip
    assert [(a.step, a.actor, a.error_code) for a in audit] == [
        (AuditStep.DEAD_LETTERED, "operator", "BAD_SIGNATURE"),
        (AuditStep.DEAD_LETTERED, "operator", "MALFORMED_MESSAGE"),
    ]
    assert not [o for o in outputs if o.topic.startswith(world.topics.prefix + "agency.")]
    # The loop only reports: applying is the feed's (every worker's) job.
    assert world.hub.directory.scenario("S999") is None


# -- swapped roots: the directory's operator and registry entries change nothing --------


@pytest.mark.parametrize("signed_by", ["attacker", "operators"])
def test_a_swapped_operators_key_in_the_directory_signs_no_command(
    world: World, signed_by: str
) -> None:
    key = ATTACKER if signed_by == "attacker" else world.keys("operator").signing
    feed(world).apply(
        b"agency/operator", encoded(entry_for(world, "operator", ATTACKER.public_bytes), key)
    )
    command = RotateKey(agency_id="jps", grace_ms=1000).signed(ATTACKER)
    outputs = world.hub.handle([world.record(control_topic(world.topics), command.to_bytes())])
    world.hub.commit()
    letters, audit = letters_and_audit(world, outputs)
    assert [x.reason for x in letters] == [ErrorCode.BAD_SIGNATURE]
    assert [(a.step, a.error_code) for a in audit] == [(AuditStep.REFUSED, "BAD_SIGNATURE")]
    assert world.hub.keyring.current_version("jps") == 1


@pytest.mark.parametrize("signed_by", ["attacker", "operators"])
def test_a_swapped_registry_key_in_the_directory_registers_nobody(
    world: World, signed_by: str
) -> None:
    key = ATTACKER if signed_by == "attacker" else world.keys("operator").signing
    feed(world).apply(
        b"agency/registry", encoded(entry_for(world, "registry", ATTACKER.public_bytes), key)
    )
    real = world.registration("10000000000", NUMBERS[0])
    assert real.value is not None
    forged = sign_message(CODEC.decode(real.value), ATTACKER, CODEC)
    outputs = world.hub.handle([world.record(world.topics.registry_events, CODEC.encode(forged))])
    world.hub.commit()
    letters, audit = letters_and_audit(world, outputs)
    assert [x.reason for x in letters] == [ErrorCode.BAD_SIGNATURE]
    assert [(a.step, a.actor) for a in audit] == [(AuditStep.DEAD_LETTERED, "registry")]
    assert world.hub.persons.get("10000000000") is None
    assert world.run(real) == []  # the registry's own key still registers
    assert world.hub.persons.get("10000000000") is not None


def test_a_swapped_agency_key_in_the_directory_is_not_obeyed(world: World) -> None:
    forged = entry_for(world, "jps", ATTACKER.public_bytes)
    assert not feed(world).apply(b"agency/jps", encoded(forged, ATTACKER))
    world.run(world.registration("10000000000", NUMBERS[0]))
    (result,) = world.run(world.enrolment("jps", NUMBERS[0]))
    assert isinstance(result, EnrolmentResult)
    assert result.outcome is EnrolmentOutcome.LINKED  # jps's real key still works


# -- every mode -------------------------------------------------------------------------


def trust_acl_world(world: World) -> World:
    hub = world.hub
    settings = HubSettings(signatures="trust-acl", key_dir=world.key_dir)
    from hub_stream.hub import Hub

    world.hub = Hub(world.topics, hub.keyring, hub.context.hub_key, settings)
    world.hub.directory = hub.directory
    return world


def test_trust_acl_still_checks_registry_events_and_commands(world: World) -> None:
    world = trust_acl_world(world)
    assert not world.hub.context.strict
    real = world.registration("10000000000", NUMBERS[0])
    assert real.value is not None
    unsigned = CODEC.decode(real.value)
    unsigned = unsigned.model_copy(
        update={"header": unsigned.header.model_copy(update={"signature": b""})}
    )
    command = RotateKey(agency_id="jps", grace_ms=1000)  # unsigned
    outputs = world.hub.handle([
        world.record(world.topics.registry_events, CODEC.encode(unsigned)),
        world.record(control_topic(world.topics), command.to_bytes()),
    ])  # fmt: skip
    world.hub.commit()
    letters, _ = letters_and_audit(world, outputs)
    assert [x.reason for x in letters] == [ErrorCode.BAD_SIGNATURE] * 2
    assert world.hub.persons.get("10000000000") is None
    assert world.hub.keyring.current_version("jps") == 1


def test_an_event_from_another_sender_is_refused_even_if_signed_by_the_registry(
    world: World,
) -> None:
    real = world.registration("10000000000", NUMBERS[0])
    assert real.value is not None
    event = CODEC.decode(real.value)
    other = event.model_copy(update={"header": event.header.model_copy(update={"sender": "jps"})})
    signed = sign_message(other, world.keys("registry").signing, CODEC)
    outputs = world.hub.handle([world.record(world.topics.registry_events, CODEC.encode(signed))])
    letters, _ = letters_and_audit(world, outputs)
    assert [(x.reason, "not by 'registry'" in x.detail) for x in letters] == [
        (ErrorCode.BAD_SIGNATURE, True)
    ]


def test_the_roots_given_to_the_hub_are_the_ones_it_checks(world: World) -> None:
    from hub_stream.hub import Hub

    roots = PinnedRoots(ATTACKER.public_bytes, ATTACKER.public_bytes)
    hub = Hub(world.topics, world.hub.keyring, world.hub.context.hub_key, world.hub.settings,
              roots=roots)  # fmt: skip
    real = world.registration("10000000000", NUMBERS[0])
    outputs = hub.handle([real])
    assert [o.topic for o in outputs if o.topic.endswith("deadletter")] == [world.topics.deadletter]
    assert hub.persons.get("10000000000") is None
