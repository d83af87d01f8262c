"""Master secret, key ring derivations, key versions, key files, and the public surface."""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import pickle
import stat
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import ValidationError

import renkei.crypto
from renkei.crypto import (
    AgencyKeyState,
    AgencyPublicKeys,
    KeyRing,
    KeyRingState,
    LinkCodes,
    MasterSecret,
    SealingKeyPair,
    SigningKey,
    keystore,
)
from renkei.crypto.keystore import InsecurePermissionsWarning
from renkei.errors import ConfigurationError

MASTER_BYTES = bytes(range(32))
NOW = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def hkdf(info: bytes, length: int, master: bytes = MASTER_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def spellings(secret: bytes) -> list[str]:
    """The ways a secret could show up in text: repr, hex, base64 (standard and URL-safe)."""
    return [
        repr(secret)[2:-1],
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


def assert_hidden(secret: bytes, *texts: str) -> None:
    for text in texts:
        for spelling in spellings(secret):
            assert spelling not in text


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(MasterSecret(MASTER_BYTES))


# -- MasterSecret -------------------------------------------------------------------------


def test_master_secret_needs_32_bytes() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as info:
        MasterSecret(b"s" * 31)
    assert "sss" not in str(info.value)
    assert len(MasterSecret(b"s" * 32)) == 32


def test_master_secret_repr_and_str_hide_the_value() -> None:
    secret = MasterSecret(MASTER_BYTES)
    assert repr(secret) == str(secret) == "MasterSecret(<32 bytes hidden>)"
    assert_hidden(MASTER_BYTES, repr(secret), str(secret), f"{secret}", f"{[secret]}")
    assert secret.get_secret_value() == MASTER_BYTES


def test_master_secret_refuses_pickle_and_copy() -> None:
    secret = MasterSecret(MASTER_BYTES)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.copy(secret)


def test_master_secret_equality_is_by_value() -> None:
    assert MasterSecret(MASTER_BYTES) == MasterSecret(bytes(MASTER_BYTES))
    assert MasterSecret(MASTER_BYTES) != MasterSecret(bytes(32))
    assert MasterSecret.generate() != MasterSecret.generate()


def test_from_file_reads_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    raw = os.urandom(48)
    path.write_bytes(raw)
    path.chmod(0o600)
    assert MasterSecret.from_file(path).get_secret_value() == raw


def test_from_file_reads_base64_with_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(MASTER_BYTES).decode() + "\n")
    path.chmod(0o600)
    assert MasterSecret.from_file(path).get_secret_value() == MASTER_BYTES


def test_from_file_rejects_short_or_missing(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 20)
    short.chmod(0o600)
    with pytest.raises(ConfigurationError, match=r"short\.key"):
        MasterSecret.from_file(short)
    # 32 characters of base64 are 24 bytes: too short, not 32 raw bytes of text.
    short.write_text(base64.b64encode(b"k" * 24).decode())
    with pytest.raises(ConfigurationError, match="at least 32 bytes, got 24"):
        MasterSecret.from_file(short)
    with pytest.raises(ConfigurationError, match="cannot read"):
        MasterSecret.from_file(tmp_path / "absent.key")


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o620, 0o602])
def test_from_file_refuses_a_file_others_may_read_or_anyone_may_write(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(MASTER_BYTES)
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match=f"mode {mode:o}.*chmod 600") as info:
        MasterSecret.from_file(path)
    assert_hidden(MASTER_BYTES, str(info.value))


def test_from_file_warns_typed_when_the_group_may_read(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(MASTER_BYTES)
    path.chmod(0o640)
    with pytest.warns(InsecurePermissionsWarning, match="readable by its group") as caught:
        assert MasterSecret.from_file(path).get_secret_value() == MASTER_BYTES
    assert_hidden(MASTER_BYTES, *(str(w.message) for w in caught))


def test_from_file_is_silent_for_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(MASTER_BYTES)
    path.chmod(0o400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MasterSecret.from_file(path)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_MASTER_KEY", base64.b64encode(MASTER_BYTES).decode())
    assert MasterSecret.from_env().get_secret_value() == MASTER_BYTES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "not set"),
        ("", "not set"),
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"k" * 16).decode(), "at least 32 bytes"),
    ],
)
def test_from_env_errors_never_quote_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("RENKEI_MASTER_KEY", raising=False)
    else:
        monkeypatch.setenv("RENKEI_MASTER_KEY", value)
    with pytest.raises(ConfigurationError, match=message) as info:
        MasterSecret.from_env()
    if value:
        assert value not in str(info.value)
        assert "RENKEI_MASTER_KEY" in str(info.value)


def test_generate_file_writes_0600_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "master.key"
    secret = MasterSecret.generate_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert MasterSecret.from_file(path) == secret
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="already exists"):
        MasterSecret.generate_file(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp file left


# -- derivations --------------------------------------------------------------------------


def test_link_code_key_uses_the_documented_label(ring: KeyRing) -> None:
    assert ring.link_code_key("nta", 1) == hkdf(b"renkei/v1/link-code/nta/1", 64)
    assert ring.link_code_key("city-13101", 12) == hkdf(b"renkei/v1/link-code/city-13101/12", 64)


def test_hmac_keys_use_the_documented_labels(ring: KeyRing) -> None:
    assert ring.audit_hmac_key == hkdf(b"renkei/v1/audit-key", 32)
    assert ring.id_code_key == hkdf(b"renkei/v1/id-code", 32)


def test_every_key_is_distinct(ring: KeyRing) -> None:
    keys = [
        ring.audit_hmac_key,
        ring.id_code_key,
        *(ring.link_code_key(a, v) for a in ("nta", "mhlw", "city-1") for v in (1, 2, 3)),
    ]
    assert len(set(keys)) == len(keys)
    other = KeyRing(MasterSecret(bytes(32)))
    assert other.link_code_key("nta", 1) != ring.link_code_key("nta", 1)
    assert other.audit_hmac_key != ring.audit_hmac_key


def test_ciphers_are_cached(ring: KeyRing) -> None:
    assert ring.link_code_cipher("nta", 1) is ring.link_code_cipher("nta", 1)
    assert ring.link_code_cipher("nta", 1) is not ring.link_code_cipher("nta", 2)


@pytest.mark.parametrize("agency_id", ["", "a/b", "agency.x", "-x", "é", "x" * 65, "a b"])
def test_invalid_agency_ids_are_refused(ring: KeyRing, agency_id: str) -> None:
    with pytest.raises(ValueError, match="invalid agency id"):
        ring.link_code_key(agency_id, 1)
    with pytest.raises(ValueError, match="invalid agency id"):
        ring.rotate(agency_id, timedelta(days=1), NOW)


@pytest.mark.parametrize("version", [0, 256, -1])
def test_versions_outside_one_byte_are_refused(ring: KeyRing, version: int) -> None:
    with pytest.raises(ValueError, match="key version"):
        ring.link_code_key("nta", version)


# -- versions and rotation ----------------------------------------------------------------


def test_agencies_start_at_version_one(ring: KeyRing) -> None:
    assert ring.current_version("nta") == 1
    assert ring.state_of("nta") == AgencyKeyState()


def test_rotate_moves_one_agency_and_keeps_a_grace_period(ring: KeyRing) -> None:
    assert ring.rotate("nta", timedelta(days=30), NOW) == 2
    state = ring.state_of("nta")
    assert state.current_version == 2
    assert state.previous_version == 1
    assert state.previous_valid_until == NOW + timedelta(days=30)
    assert state.rotated_at == NOW
    assert state.accepts(1, NOW + timedelta(days=29))
    assert not state.accepts(1, NOW + timedelta(days=30))
    assert state.is_retired(1, NOW + timedelta(days=30))
    assert not state.is_retired(3, NOW + timedelta(days=30))  # never issued, not retired
    assert ring.current_version("mhlw") == 1


def test_second_rotation_in_grace_retires_the_oldest_version(
    ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    ring.rotate("nta", timedelta(days=30), NOW)
    with caplog.at_level(logging.WARNING):
        assert ring.rotate("nta", timedelta(days=30), NOW + timedelta(days=1)) == 3
    assert "ends the grace period of version 1 early" in caplog.text
    state = ring.state_of("nta")
    assert state.previous_version == 2
    assert state.is_retired(1, NOW + timedelta(days=2))


def test_rotate_rejects_naive_time_and_negative_grace(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ring.rotate("nta", timedelta(days=1), datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        ring.rotate("nta", timedelta(seconds=-1), NOW)
    assert ring.current_version("nta") == 1


def test_rotate_stops_at_version_255() -> None:
    ring = KeyRing(MasterSecret(MASTER_BYTES), {"nta": AgencyKeyState(current_version=255)})
    with pytest.raises(ConfigurationError, match="all 255 versions"):
        ring.rotate("nta", timedelta(0), NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"current_version": 0},
        {"current_version": 256},
        {"current_version": 2, "previous_version": 1},
        {"current_version": 2, "previous_valid_until": NOW},
        {"current_version": 2, "previous_version": 2, "previous_valid_until": NOW},
        {"current_version": 2, "previous_version": 1, "previous_valid_until": "2025-01-01T00:00"},
        {"current_version": 1, "key": "00"},
    ],
)
def test_inconsistent_states_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgencyKeyState.model_validate(fields)


def test_state_round_trips_through_json_without_key_bytes(ring: KeyRing) -> None:
    ring.rotate("nta", timedelta(days=30), NOW)
    ring.rotate("city-13101", timedelta(hours=1), NOW)
    text = ring.export_state().model_dump_json()
    document = json.loads(text)
    assert set(document["agencies"]) == {"nta", "city-13101"}
    assert set(document["agencies"]["nta"]) == {
        "current_version",
        "previous_version",
        "previous_valid_until",
        "rotated_at",
    }
    for secret in (
        MASTER_BYTES,
        ring.link_code_key("nta", 1),
        ring.link_code_key("nta", 2),
        ring.audit_hmac_key,
    ):
        assert_hidden(secret, text)

    rebuilt = KeyRing.from_state(MasterSecret(MASTER_BYTES), KeyRingState.model_validate_json(text))
    assert rebuilt.state_of("nta") == ring.state_of("nta")
    # The rebuilt ring opens what the first one minted, under both versions.
    id_code = bytes(16)
    assert LinkCodes(rebuilt).mint("nta", id_code) == LinkCodes(ring).mint("nta", id_code)


def test_set_state_adopts_newer_and_refuses_older(ring: KeyRing) -> None:
    newer = AgencyKeyState(
        current_version=3, previous_version=2, previous_valid_until=NOW, rotated_at=NOW
    )
    ring.set_state("nta", newer)
    assert ring.current_version("nta") == 3
    with pytest.raises(ConfigurationError, match="refusing to go back"):
        ring.set_state("nta", AgencyKeyState(current_version=2))
    assert ring.current_version("nta") == 3


def test_key_ring_state_refuses_bad_agency_ids() -> None:
    with pytest.raises(ValidationError):
        KeyRingState.model_validate({"agencies": {"a/b": {}}})


# -- key files ----------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ["X25519", "MLKEM768_X25519"])
def test_agency_keys_round_trip_through_a_0600_file(tmp_path: Path, suite: str) -> None:
    created = keystore.create(tmp_path / "keys", "nta", suite)  # type: ignore[arg-type]
    path = keystore.agency_key_path(tmp_path / "keys", "nta")
    assert path.name == "agency-nta.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = keystore.load(tmp_path / "keys", "nta")
    assert loaded.agency_id == "nta"
    assert loaded.signing.public_bytes == created.signing.public_bytes
    assert loaded.sealing.suite == suite
    assert loaded.sealing.private_bytes() == created.sealing.private_bytes()
    assert loaded.public() == created.public()


def test_agency_key_file_is_never_overwritten(tmp_path: Path) -> None:
    first = keystore.create(tmp_path, "nta")
    with pytest.raises(ConfigurationError, match="already exists"):
        keystore.create(tmp_path, "nta")
    assert keystore.load(tmp_path, "nta").signing.public_bytes == first.signing.public_bytes


def test_loading_a_missing_or_foreign_key_file_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        keystore.load(tmp_path, "nta")
    keystore.create(tmp_path, "nta")
    keystore.agency_key_path(tmp_path, "nta").rename(keystore.agency_key_path(tmp_path, "mhlw"))
    with pytest.raises(ConfigurationError, match="holds keys of agency 'nta'"):
        keystore.load(tmp_path, "mhlw")


def test_a_corrupt_key_file_fails_without_quoting_it(tmp_path: Path) -> None:
    keys = keystore.create(tmp_path, "nta")
    path = keystore.agency_key_path(tmp_path, "nta")
    document = json.loads(path.read_text())
    document["signing_key"] = document["signing_key"][:-4] + "!!!!"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match="signing_key") as info:
        keystore.load(tmp_path, "nta")
    assert_hidden(keys.signing.to_bytes(), str(info.value))
    assert document["signing_key"][:20] not in str(info.value)
    assert info.value.__cause__ is None


def test_a_key_file_whose_public_key_was_swapped_fails(tmp_path: Path) -> None:
    keystore.create(tmp_path, "nta")
    path = keystore.agency_key_path(tmp_path, "nta")
    document = json.loads(path.read_text())
    other = SealingKeyPair.generate()
    document["sealing_public_key"] = base64.b64encode(other.public_bytes).decode()
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match="do not match"):
        keystore.load(tmp_path, "nta")


def test_hub_signing_key_round_trips(tmp_path: Path) -> None:
    key = keystore.create_hub_signing_key(tmp_path)
    assert stat.S_IMODE(keystore.hub_key_path(tmp_path).stat().st_mode) == 0o600
    assert keystore.load_hub_signing_key(tmp_path).public_bytes == key.public_bytes
    with pytest.raises(ConfigurationError, match="already exists"):
        keystore.create_hub_signing_key(tmp_path)


def test_public_keys_serialise_as_standard_base64(tmp_path: Path) -> None:
    keys = keystore.create(tmp_path, "nta")
    document = json.loads(keys.public().model_dump_json())
    assert base64.b64decode(document["signing_public_key"]) == keys.signing.public_bytes
    assert base64.b64decode(document["sealing_public_key"]) == keys.sealing.public_bytes
    assert AgencyPublicKeys.model_validate_json(keys.public().model_dump_json()) == keys.public()


# -- secrets never show up in text --------------------------------------------------------


def test_no_object_prints_its_key_bytes(tmp_path: Path, ring: KeyRing) -> None:
    keys = keystore.create(tmp_path, "nta", "MLKEM768_X25519")
    signing = SigningKey.generate()
    ring.link_code_cipher("nta", 1)
    texts = [
        repr(ring),
        str(ring),
        repr(LinkCodes(ring)),
        repr(keys),
        str(keys),
        repr(keys.sealing),
        repr(signing),
        str(signing),
        repr(keys.public()),
        ring.export_state().model_dump_json(),
    ]
    secrets = [
        MASTER_BYTES,
        ring.link_code_key("nta", 1),
        ring.audit_hmac_key,
        ring.id_code_key,
        keys.signing.to_bytes(),
        keys.sealing.private_bytes(),
        keys.sealing.private_bytes()[:32],  # the ML-KEM seed alone
        signing.to_bytes(),
    ]
    for secret in secrets:
        assert_hidden(secret, *texts)


# -- public surface -----------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(renkei.crypto.__all__) == sorted(
        [
            "ATTRIBUTES_INFO",
            "AUDIT_KEY_INFO",
            "DEFAULT_SUITE",
            "ID_CODE_INFO",
            "ID_CODE_LENGTH",
            "LINK_CODE_INFO_PREFIX",
            "LINK_CODE_LENGTH",
            "MASTER_KEY_ENV",
            "MAX_KEY_VERSION",
            "SUITES",
            "AgencyKeyState",
            "AgencyKeys",
            "AgencyPublicKeys",
            "IdCode",
            "KeyRing",
            "KeyRingState",
            "LinkCodes",
            "MasterSecret",
            "SealingKeyPair",
            "SigningKey",
            "SuiteName",
            "audit_key",
            "check_agency_id",
            "check_public_key",
            "decode_attributes",
            "encode_attributes",
            "exchange_aad",
            "keystore",
            "link_code_info",
            "new_id_code",
            "open_sealed",
            "seal",
            "verify",
        ]
    )
    for name in renkei.crypto.__all__:
        assert hasattr(renkei.crypto, name), name
    assert "open" not in renkei.crypto.__all__  # a star import must not shadow the builtin
