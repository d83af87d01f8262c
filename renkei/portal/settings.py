"""The portal's settings (``RENKEI_PORTAL_*``) and the files they point to.

What the portal trusts comes from here and never from Kafka: the audit signing keys that
checkpoints must verify with (a copy of the hub's ``audit-trust.json``), the operators'
public key that releases and directory entries must verify with, and the portal's own
secret that signs its challenges and sessions (``docs/audit.md``, "The citizen portal").
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from renkei.auditchain import TrustedKeys
from renkei.crypto._files import read_secret_file, write_public_file, write_secret_file
from renkei.errors import ConfigurationError

__all__ = [
    "PortalSettings",
    "PortalTrust",
    "load_operator_key",
    "load_or_create_secret",
    "write_operator_key",
]

_SECRET_BYTES = 32
_PUBLIC_FORMAT = "renkei-public-key/1"


class PortalSettings(BaseSettings):
    """How one portal process runs. Several processes behind a balancer share the secret
    file and the rate-limit store."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_PORTAL_", frozen=True, extra="ignore")

    citizens: Path = Field(
        default=Path(".renkei/citizens.json"),
        description="RENKEI_PORTAL_CITIZENS: the citizen key list (register-citizen writes it).",
    )
    audit_trust: Path = Field(
        default=Path(".renkei/keys/audit-trust.json"),
        description="RENKEI_PORTAL_AUDIT_TRUST: the audit signing keys checkpoints must "
        "verify with; a copy of the hub's audit-trust.json handed over out of band.",
    )
    operator_key: Path = Field(
        default=Path(".renkei/keys/operator-public.json"),
        description="RENKEI_PORTAL_OPERATOR_KEY: the operators' Ed25519 public key, which "
        "releases and directory entries must verify with (`renkei portal pin-operator`).",
    )
    secret_file: Path = Field(
        default=Path(".renkei/portal-secret"),
        description="RENKEI_PORTAL_SECRET_FILE: 32 random bytes (mode 0600, made if missing) "
        "that sign challenges and sessions; every process of one portal uses the same.",
    )
    secret: SecretStr | None = Field(
        default=None,
        description="RENKEI_PORTAL_SECRET: the secret itself (base64), instead of the file.",
    )
    portal_id: str = Field(
        default="renkei-portal",
        description="RENKEI_PORTAL_PORTAL_ID: names this portal in the signed login message.",
    )
    tls: bool = Field(
        default=False,
        description="RENKEI_PORTAL_TLS: served over HTTPS (by a proxy): Secure cookies, HSTS.",
    )
    limits_storage: str = Field(
        default="memory://",
        description="RENKEI_PORTAL_LIMITS_STORAGE: where rate limits, used challenges and "
        "logged-out sessions are counted (a `limits` storage URI; memory:// is per process, "
        "redis://host:port is shared by every process).",
    )
    login_limit_ip: str = Field(
        default="60/minute",
        description="RENKEI_PORTAL_LOGIN_LIMIT_IP: login attempts per client address.",
    )
    login_limit_resident: str = Field(
        default="10 per 15 minutes",
        description="RENKEI_PORTAL_LOGIN_LIMIT_RESIDENT: failed logins per resident code.",
    )
    challenge_ttl_s: int = Field(
        default=120, description="RENKEI_PORTAL_CHALLENGE_TTL_S: how long a challenge lasts."
    )
    session_ttl_s: int = Field(
        default=900, description="RENKEI_PORTAL_SESSION_TTL_S: how long a session lasts."
    )
    rp_id: str = Field(
        default="localhost",
        description="RENKEI_PORTAL_RP_ID: the host name passkeys are bound to (WebAuthn's "
        "relying party id): the portal's own host, e.g. portal.city.example.",
    )
    origins: str = Field(
        default="",
        description="RENKEI_PORTAL_ORIGINS: the origins the browser may report at a passkey "
        "ceremony, comma-separated (https://portal.city.example); default the RP id with "
        "the port served, http:// or, with RENKEI_PORTAL_TLS, https://.",
    )
    witness_state: Path | None = Field(
        default=None,
        description="RENKEI_PORTAL_WITNESS_STATE: the state file of the portal's witness of "
        "the tree heads (renkei.witness); unset: "
        "$RENKEI_HOME/witness/<topic prefix>portal.hub.audit.json. Every process of one "
        "portal keeps its own.",
    )
    stale_after_s: float = Field(
        default=300,
        description="RENKEI_PORTAL_STALE_AFTER_S: /healthz reports the portal stuck when a "
        "record has waited this long for a checkpoint.",
    )


@dataclass(frozen=True)
class PortalTrust:
    """The pinned roots: audit signing keys (checkpoints) and the operators' key.

    :param audit_keys: keys an ``AuditCheckpoint`` may be signed with.
    :param operator_key: the operators' 32-byte Ed25519 public key.
    """

    audit_keys: TrustedKeys
    operator_key: bytes

    @classmethod
    def load(cls, settings: PortalSettings) -> PortalTrust:
        """:raises ConfigurationError: a file is missing or is not what it should be."""
        audit_keys = TrustedKeys.load(settings.audit_trust)
        if not audit_keys.keys:
            raise ConfigurationError(f"{settings.audit_trust} trusts no key")
        return cls(audit_keys, load_operator_key(settings.operator_key))


def load_operator_key(path: Path) -> bytes:
    """The operators' public key from ``path``: a ``renkei-public-key/1`` file, or any JSON
    file with ``signing_public_key`` (only that field is read), or one line of base64.

    :raises ConfigurationError: unreadable, or not a 32-byte key.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the operators' key {path}: {exc}") from exc
    value: object = text
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not JSON: {exc}") from exc
        value = document.get("signing_public_key") if isinstance(document, dict) else None
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"{path} holds no 32-byte Ed25519 public key")
    return key


def write_operator_key(path: Path, public_key: bytes) -> None:
    """Pin the operators' public key for a portal (a public file, mode 0644)."""
    if len(public_key) != 32:
        raise ConfigurationError("an operators' key is a 32-byte Ed25519 public key")
    document = {
        "format": _PUBLIC_FORMAT,
        "signing_public_key": base64.b64encode(public_key).decode(),
    }
    write_public_file(path, (json.dumps(document) + "\n").encode())


def load_or_create_secret(settings: PortalSettings) -> bytes:
    """The portal secret: ``RENKEI_PORTAL_SECRET``, else the secret file (made if missing).

    :raises ConfigurationError: too short, not base64, or an unreadable file.
    """
    if settings.secret is not None:
        try:
            secret = base64.b64decode(settings.secret.get_secret_value(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError("RENKEI_PORTAL_SECRET is not base64") from exc
    else:
        path = settings.secret_file
        if not path.exists():
            try:
                write_secret_file(path, secrets.token_bytes(_SECRET_BYTES))
            except ConfigurationError:
                if not path.exists():
                    raise  # else another portal process made it first: read theirs
        secret = read_secret_file(path)
    if len(secret) < _SECRET_BYTES:
        raise ConfigurationError(f"the portal secret must be at least {_SECRET_BYTES} bytes")
    return secret
