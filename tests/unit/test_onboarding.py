"""Onboarding takes public keys only: agency-made keys, public bundles, the hub's entry."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from renkei.cli.app import app
from renkei.crypto import AgencyPublicKeys, keystore
from renkei.crypto.bundles import (
    BUNDLE_FORMAT,
    HUB_ID,
    bundle_path,
    parse_bundle,
    read_bundle,
    read_bundles,
)
from renkei.errors import ConfigurationError
from renkei.operator.directory_file import load_directory_file
from renkei.operator.onboarding import agency_init, export_public, hub_init
from renkei.operator.publish import HUB, SENDERS, directory_entries, directory_keys, publish
from renkei.settings import KafkaSettings
from schemas.models import AgencyEntry

PUBLIC_FIELDS = {"format", "agency_id", "signing_public_key", "sealing_suite", "sealing_public_key"}


def spellings(secret: bytes) -> list[str]:
    """How a secret could appear in a text file: base64 (both alphabets), hex."""
    return [
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.hex(),
    ]


def onboard_everyone(tmp_path: Path) -> tuple[Path, Path]:
    """Every party makes its keys in its own folder; return (operators' folder, bundles).

    The bundles folder receives only what each party sends: its public bundle.
    """
    bundles = tmp_path / "received"
    bundles.mkdir()
    parties = [a.agency_id for a in load_directory_file().agencies] + [s[0] for s in SENDERS]
    for party in parties:
        files = agency_init(tmp_path / "at" / party, party, csr=False)
        shutil.copy(files.bundle, bundles)
    hub_init(tmp_path / "hub-host")
    shutil.copy(bundle_path(tmp_path / "hub-host", HUB_ID), bundles)
    return tmp_path / "at" / "operator", bundles


@pytest.mark.parametrize("suite", ["X25519", "MLKEM768_X25519"])
def test_a_public_bundle_holds_no_private_byte(tmp_path: Path, suite: str) -> None:
    files = agency_init(tmp_path / "nta", "nta", suite)  # type: ignore[arg-type]
    keys = keystore.load(tmp_path / "nta", "nta")
    text = files.bundle.read_text()
    document = json.loads(text)
    assert set(document) == PUBLIC_FIELDS
    assert document["format"] == BUNDLE_FORMAT
    assert base64.b64decode(document["signing_public_key"]) == keys.signing.public_bytes
    assert base64.b64decode(document["sealing_public_key"]) == keys.sealing.public_bytes
    for secret in (keys.signing.to_bytes(), keys.sealing.private_bytes()):
        for spelling in spellings(secret):
            assert spelling not in text
    assert read_bundle(files.bundle) == keys.public()


def test_the_hub_bundle_holds_its_verification_key_only(tmp_path: Path) -> None:
    created = hub_init(tmp_path / "hub")
    assert created == ["master", HUB_ID, "hub.public.json"]
    key = keystore.load_hub_signing_key(tmp_path / "hub")
    path = bundle_path(tmp_path / "hub", HUB_ID)
    text = path.read_text()
    assert set(json.loads(text)) == PUBLIC_FIELDS
    for spelling in spellings(key.to_bytes()):
        assert spelling not in text
    bundle = read_bundle(path)
    assert bundle == AgencyPublicKeys(agency_id=HUB_ID, signing_public_key=key.public_bytes)
    assert bundle.sealing_suite is None
    assert bundle.sealing_public_key == b""
    assert hub_init(tmp_path / "hub") == []  # nothing replaced


def test_the_certificate_request_names_the_agency_and_matches_its_key(tmp_path: Path) -> None:
    files = agency_init(tmp_path / "nta", "nta")
    assert files.csr is not None
    assert files.tls_key is not None
    request = x509.load_pem_x509_csr(files.csr.read_bytes())
    assert request.is_signature_valid
    assert [a.value for a in request.subject] == ["nta"]
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "nta"
    usage = request.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    key = serialization.load_pem_private_key(files.tls_key.read_bytes(), password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == request.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert b"PRIVATE" not in files.csr.read_bytes()


def test_agency_init_never_replaces_keys_and_refuses_the_hubs_id(tmp_path: Path) -> None:
    first = agency_init(tmp_path / "nta", "nta")
    with pytest.raises(ConfigurationError, match="already exists"):
        agency_init(tmp_path / "nta", "nta")
    assert keystore.load(tmp_path / "nta", "nta").public() == first.public
    with pytest.raises(ConfigurationError, match="hub's own id"):
        agency_init(tmp_path / "h", HUB_ID)
    with pytest.raises(ConfigurationError, match="invalid agency id"):
        agency_init(tmp_path / "x", "a.b")


def test_export_public_is_repeatable_and_never_replaces_another_bundle(tmp_path: Path) -> None:
    files = agency_init(tmp_path / "nta", "nta", csr=False)
    before = files.bundle.read_bytes()
    path, public = export_public(tmp_path / "nta", "nta")
    assert path == files.bundle
    assert public == files.public
    assert path.read_bytes() == before
    other = agency_init(tmp_path / "other", "nta", csr=False)
    with pytest.raises(ConfigurationError, match="already exists"):
        export_public(tmp_path / "other", "nta", tmp_path / "nta")
    assert read_bundle(files.bundle) != other.public


def test_the_directory_is_built_from_public_bundles_only(tmp_path: Path) -> None:
    _, bundles = onboard_everyone(tmp_path)
    assert all(p.name.endswith(".public.json") for p in bundles.iterdir())
    directory = load_directory_file()
    keys = directory_keys(directory, bundles)
    entries = directory_entries(directory, keys, (*SENDERS, HUB))
    agencies = {e.agency_id: e for e in entries if isinstance(e, AgencyEntry)}
    hub_key = keystore.load_hub_signing_key(tmp_path / "hub-host")
    assert agencies[HUB_ID].signing_public_key == hub_key.public_bytes
    assert agencies[HUB_ID].sealing_public_key == b""
    assert agencies[HUB_ID].entitled_events == ()
    jps = keystore.load(tmp_path / "at" / "jps", "jps")
    assert agencies["jps"].signing_public_key == jps.signing.public_bytes
    assert agencies["jps"].sealing_public_key == jps.sealing.public_bytes
    assert set(agencies) == set(keys)


def test_a_missing_bundle_is_named(tmp_path: Path) -> None:
    _, bundles = onboard_everyone(tmp_path)
    (bundles / "hub.public.json").unlink()
    (bundles / "agency-jps.public.json").unlink()
    with pytest.raises(ConfigurationError, match="for: jps, hub") as info:
        directory_keys(load_directory_file(), bundles)
    assert "export-public" in str(info.value)


def test_a_private_key_file_handed_over_as_a_bundle_is_refused(tmp_path: Path) -> None:
    keys = keystore.create(tmp_path, "nta")
    private = keystore.agency_key_path(tmp_path, "nta").read_bytes()
    bundles = tmp_path / "received"
    bundles.mkdir()
    (bundles / "agency-nta.public.json").write_bytes(private)
    with pytest.raises(ConfigurationError, match="PRIVATE key") as info:
        read_bundles(bundles)
    for spelling in spellings(keys.signing.to_bytes()):
        assert spelling not in str(info.value)
    document = json.loads(keys.public().to_bundle())
    document["sealing_private_key"] = base64.b64encode(keys.sealing.private_bytes()).decode()
    with pytest.raises(ConfigurationError, match="PRIVATE key"):
        parse_bundle(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signing_public_key": base64.b64encode(b"k" * 31).decode()}, "Ed25519"),
        ({"sealing_public_key": base64.b64encode(bytes(32)).decode()}, "X25519"),
        ({"sealing_suite": None}, "needs a sealing_suite"),
        ({"agency_id": "a/b"}, "agency_id"),
        ({"format": "renkei-public-keys/2"}, "format"),
        ({"comment": "hi"}, "comment"),
    ],
)
def test_a_bad_bundle_is_refused_with_its_problem(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    document = json.loads(keystore.create(tmp_path, "nta").public().to_bundle()) | change
    with pytest.raises(ConfigurationError, match=problem):
        parse_bundle(json.dumps(document), source="nta.public.json")


def test_two_bundles_of_one_agency_are_refused(tmp_path: Path) -> None:
    files = agency_init(tmp_path / "nta", "nta", csr=False)
    shutil.copy(files.bundle, tmp_path / "nta" / "copy.public.json")
    with pytest.raises(ConfigurationError, match="both bundles of 'nta'"):
        read_bundles(tmp_path / "nta")


def test_a_directory_file_may_not_use_reserved_ids(tmp_path: Path) -> None:
    _, bundles = onboard_everyone(tmp_path)
    document = json.loads(
        (Path(__file__).parents[2] / "renkei/operator/data/directory.json").read_text("utf-8")
    )
    document["agencies"][0]["agency_id"] = HUB_ID
    document["scenarios"] = []
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="reserved ids: \\['hub'\\]"):
        directory_keys(load_directory_file(path), bundles)


async def test_publish_refuses_an_operator_key_that_is_not_in_the_bundles(tmp_path: Path) -> None:
    operators, bundles = onboard_everyone(tmp_path)
    impostor = tmp_path / "impostor"
    keystore.create(impostor, "operator")
    # Refused before any connection: the bootstrap address is never dialled.
    nowhere = KafkaSettings(bootstrap="127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="not the one in the operators' public bundle"):
        await publish(nowhere, "u.", impostor, None, bundles)
    with pytest.raises(ConfigurationError, match=r"agency-operator\.json"):
        await publish(nowhere, "u.", tmp_path / "empty", None, bundles)
    assert keystore.load(operators, "operator").signing.public_bytes == (
        read_bundle(bundle_path(bundles, "operator")).signing_public_key
    )


def test_fingerprints_differ_by_key_and_by_agency(tmp_path: Path) -> None:
    a = keystore.create(tmp_path, "nta").public()
    b = keystore.create(tmp_path, "mhlw").public()
    same_keys_other_id = a.model_copy(update={"agency_id": "mhlw"})
    prints = {a.fingerprint(), b.fingerprint(), same_keys_other_id.fingerprint()}
    assert len(prints) == 3
    assert len(a.fingerprint().split()) == 8
    assert a.fingerprint() == parse_bundle(a.to_bundle()).fingerprint()


def test_the_cli_onboards_an_agency(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "nta-keys"
    made = runner.invoke(app, ["keys", "agency-init", "--agency", "nta", "--out", str(out)])
    assert made.exit_code == 0, made.output
    public = read_bundle(bundle_path(out, "nta"))
    assert public.fingerprint() in made.output
    assert "never send" in made.output
    shown = runner.invoke(app, ["keys", "fingerprint", str(bundle_path(out, "nta"))])
    assert shown.exit_code == 0, shown.output
    assert f"nta: {public.fingerprint()}" in shown.output
    hub = runner.invoke(app, ["keys", "hub-init", "--key-dir", str(tmp_path / "hub")])
    assert hub.exit_code == 0, hub.output
    exported = tmp_path / "sent" / "hub.json"
    again = runner.invoke(
        app,
        ["keys", "export-public", "--agency", "hub", "--key-dir", str(tmp_path / "hub"),
         "--out", str(exported)],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert read_bundle(exported).agency_id == HUB_ID
    bad = runner.invoke(app, ["keys", "agency-init", "--agency", "x", "--out", str(out / "y"),
                              "--suite", "RSA"])  # fmt: skip
    assert bad.exit_code == 2
    assert "unknown sealing suite" in bad.output


def test_public_surface() -> None:
    from renkei.crypto import _files, bundles, tls
    from renkei.operator import hub_key, onboarding
    from renkei.operator import publish as publish_module

    for module in (_files, bundles, tls, keystore, hub_key, onboarding, publish_module):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
