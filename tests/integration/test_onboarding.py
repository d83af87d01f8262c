"""Onboarding on a real broker: the directory published from public bundles only, and an
agency learning the hub's verification key from it under the operators' signature."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hub_stream.ids import derive_id
from renkei.crypto import SigningKey, keystore
from renkei.crypto.bundles import HUB_ID, bundle_path, read_bundle
from renkei.errors import SignatureError
from renkei.operator.directory_file import load_directory_file
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.onboarding import agency_init, hub_init
from renkei.operator.publish import SENDERS, publish, publish_directory
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import AgencyEntry, Header


def onboard(tmp_path: Path) -> tuple[Path, Path]:
    """Each party makes keys in its own folder and sends only its bundle to ``received``."""
    received = tmp_path / "received"
    received.mkdir()
    for party in [a.agency_id for a in load_directory_file().agencies] + [s[0] for s in SENDERS]:
        shutil.copy(agency_init(tmp_path / party, party, csr=False).bundle, received)
    hub_init(tmp_path / "hub-host")
    shutil.copy(bundle_path(tmp_path / "hub-host", HUB_ID), received)
    # The operators' own folder: their private key and nothing of anyone else's.
    operators = tmp_path / "operators"
    operators.mkdir(mode=0o700)
    shutil.copy(keystore.agency_key_path(tmp_path / "operator", "operator"), operators)
    return operators, received


async def test_publish_from_bundles_and_fetch_the_hub_key(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    operators, received = onboard(tmp_path)
    kafka = {"bootstrap_servers": kafka_bootstrap}
    count = await publish(
        KafkaSettings(bootstrap=kafka_bootstrap), topics.prefix, operators, None, received
    )
    directory = load_directory_file()
    assert count == len(directory.agencies) + len(SENDERS) + 1 + len(directory.scenarios)

    pinned = read_bundle(bundle_path(received, "operator")).signing_public_key
    hub = await hub_key_from_directory(kafka, topics, pinned)
    assert hub.agency_id == HUB_ID
    assert hub.signing_public_key == (
        keystore.load_hub_signing_key(tmp_path / "hub-host").public_bytes
    )
    with pytest.raises(SignatureError):
        await hub_key_from_directory(kafka, topics, SigningKey.generate().public_bytes)

    # Someone with write access but not the operators' key replaces the hub's entry.
    forged = AgencyEntry(
        header=Header.new("operator", message_id=derive_id("dir", "forged")),
        agency_id=HUB_ID,
        name="Renkei hub",
        name_ja="連携ハブ",
        signing_public_key=SigningKey.generate().public_bytes,
        sealing_public_key=b"",
        entitled_events=(),
        active=True,
    )
    await publish_directory(kafka, topics, [forged], default_codec(), SigningKey.generate())
    with pytest.raises(SignatureError):
        await hub_key_from_directory(kafka, topics, pinned)
