"""Where the portal's trust comes from: pinned key files and the secret, never Kafka."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from renkei.auditchain import load_or_create_signer
from renkei.cli import app
from renkei.crypto import SigningKey, keystore
from renkei.errors import ConfigurationError
from renkei.portal import PortalSettings, PortalTrust
from renkei.portal.settings import load_operator_key, load_or_create_secret, write_operator_key


def test_the_operators_key_from_a_pinned_file(tmp_path: Path) -> None:
    key = SigningKey.generate().public_bytes
    pinned = tmp_path / "operator-public.json"
    write_operator_key(pinned, key)
    assert load_operator_key(pinned) == key
    assert stat.S_IMODE(pinned.stat().st_mode) == 0o644  # public by design
    line = tmp_path / "operator.pub"
    line.write_text(base64.b64encode(key).decode() + "\n")
    assert load_operator_key(line) == key


@pytest.mark.parametrize(
    "content", ["", "not base64!", base64.b64encode(b"short").decode(), '{"other": "x"}', "{"]
)
def test_a_bad_operators_key_file_stops_the_portal(tmp_path: Path, content: str) -> None:
    path = tmp_path / "operator.pub"
    path.write_text(content)
    with pytest.raises(ConfigurationError):
        load_operator_key(path)


def test_pinning_needs_both_files(tmp_path: Path) -> None:
    load_or_create_signer(tmp_path / "keys")
    settings = PortalSettings(
        audit_trust=tmp_path / "keys" / "audit-trust.json",
        operator_key=tmp_path / "missing.json",
    )
    with pytest.raises(ConfigurationError, match="operators' key"):
        PortalTrust.load(settings)
    write_operator_key(tmp_path / "missing.json", SigningKey.generate().public_bytes)
    trust = PortalTrust.load(settings)
    assert len(trust.audit_keys.keys) == 1
    with pytest.raises(ConfigurationError):
        PortalTrust.load(settings.model_copy(update={"audit_trust": tmp_path / "none.json"}))


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = PortalSettings(secret_file=tmp_path / "portal" / "secret")
    first = load_or_create_secret(settings)
    assert len(first) == 32
    assert stat.S_IMODE(settings.secret_file.stat().st_mode) == 0o600
    assert load_or_create_secret(settings) == first  # a restart, or a second process


def test_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_PORTAL_SECRET", base64.b64encode(b"k" * 32).decode())
    assert load_or_create_secret(PortalSettings()) == b"k" * 32
    monkeypatch.setenv("RENKEI_PORTAL_SECRET", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        load_or_create_secret(PortalSettings())


def test_pin_operator_exports_the_public_half_only(tmp_path: Path) -> None:
    keystore_dir = tmp_path / "keys"
    operator = keystore.create(keystore_dir, "operator")
    out = tmp_path / "portal" / "operator-public.json"
    result = CliRunner().invoke(
        app, ["portal", "pin-operator", "--key-dir", str(keystore_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document) == {"format", "signing_public_key"}
    assert load_operator_key(out) == operator.signing.public_bytes


def test_serve_refuses_to_start_without_pinned_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["portal", "serve", "--audit-trust", str(tmp_path / "none.json"),
         "--operator-key", str(tmp_path / "none.pub"), "--secret-file", str(tmp_path / "s")],
        env={"RENKEI_BOOTSTRAP": "127.0.0.1:9"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "audit trust file" in result.output
