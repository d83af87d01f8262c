"""The agency's witness without a broker: where its settings come from, when it is off."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from consumers import InboxReader, ProviderService, WitnessSettings
from consumers.witness import acquire
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey
from renkei.errors import ConfigurationError
from renkei.topics import Topics

TOPICS = Topics(prefix="unit.")


def test_the_state_file_defaults_under_renkei_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENKEI_HOME", str(tmp_path))
    monkeypatch.delenv("RENKEI_AGENCY_WITNESS_STATE", raising=False)
    assert WitnessSettings().state_path("jps", TOPICS) == (
        tmp_path / "witness" / "unit.agency.jps.heads.json"
    )
    monkeypatch.setenv("RENKEI_AGENCY_WITNESS_STATE", str(tmp_path / "w.json"))
    assert WitnessSettings().state_path("jps", TOPICS) == tmp_path / "w.json"


async def test_without_the_trust_file_the_witness_is_off_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RENKEI_AGENCY_AUDIT_TRUST", raising=False)
    with caplog.at_level(logging.INFO, logger="consumers.witness"):
        assert await acquire("jps", {}, TOPICS) is None
    assert "the audit witness is off (RENKEI_AGENCY_AUDIT_TRUST unset)" in caplog.text
    with pytest.raises(ConfigurationError, match="RENKEI_AGENCY_AUDIT_TRUST"):
        await acquire("jps", {}, TOPICS, required=True)


async def test_a_witness_that_cannot_start_is_off_unless_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RENKEI_AGENCY_AUDIT_TRUST", str(tmp_path / "missing.json"))
    with caplog.at_level(logging.ERROR, logger="consumers.witness"):
        assert await acquire("jps", {}, TOPICS) is None
    assert "could not start" in caplog.text
    with pytest.raises(ConfigurationError, match="audit trust file"):
        await acquire("jps", {}, TOPICS, required=True)


def test_services_pass_the_witness_settings_to_a_reader_of_their_own() -> None:
    keys = AgencyKeys("jps", SigningKey.generate(), SealingKeyPair.generate())

    async def lookup(request: object) -> dict[str, object]:
        return {}

    provider = ProviderService("jps", keys, {}, TOPICS, lookup, verify_hub=False, witness=False)
    assert provider.reader.run_witness is False
    assert InboxReader("jps", {}, TOPICS, verify_hub=False).run_witness is None
    shared = InboxReader("jps", {}, TOPICS, verify_hub=False)
    with pytest.raises(ConfigurationError, match="witness"):
        ProviderService("jps", keys, {}, TOPICS, lookup, inbox=shared, witness=True)
