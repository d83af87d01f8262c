"""``renkei portal serve | pin-operator | offer | registrar | register-citizen | citizen-key
| sign``: the portal.

``offer`` is the registry's counter: it publishes a signed passkey registration offer and
prints the one-time code to hand to the citizen; ``registrar`` is the hub side that turns
offers into registrations the portal believes (it needs the master secret). ``citizen-key``
and ``sign`` stand in for the My Number card and its reader app: the first makes a
citizen's key pair, the second signs the portal's login challenge.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, friendly_errors

if TYPE_CHECKING:
    from limits.storage import Storage

__all__ = ["portal_app"]

portal_app = typer.Typer(help="The citizen portal (マイ・ポータル).", no_args_is_help=True)

KeyDir = Annotated[Path, typer.Option(help="Where key files live.", envvar="RENKEI_HUB_KEY_DIR")]
Prefix = Annotated[
    str, typer.Option(help="Topic name prefix of the deployment.", envvar="RENKEI_HUB_TOPIC_PREFIX")
]
Citizens = Annotated[
    Path,
    typer.Option(help="The citizen key list.", envvar="RENKEI_PORTAL_CITIZENS"),
]


@portal_app.command("serve")
@friendly_errors
def serve(
    citizens: Citizens = Path(".renkei/citizens.json"),
    prefix: Prefix = "",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    audit_trust: Annotated[
        Path | None,
        typer.Option(help="Pinned audit signing keys (a copy of the hub's audit-trust.json)."),
    ] = None,
    operator_key: Annotated[
        Path | None,
        typer.Option(help="Pinned operators' public key (`renkei portal pin-operator`)."),
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="The portal secret (made, mode 0600, if missing).")
    ] = None,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Proxies whose X-Forwarded-For names the client address.")
    ] = "127.0.0.1",
) -> None:
    """Serve the portal; it follows hub.audit, believes what verifies, answers from memory.

    Every other setting is a RENKEI_PORTAL_* variable (docs/audit.md).
    """
    import uvicorn

    from renkei.portal import (
        Authenticator,
        CitizenRegistry,
        LoginLimits,
        PortalIndex,
        PortalSettings,
        PortalTrust,
        TrailVerifier,
        create_app,
    )
    from renkei.portal.passkeys import PasskeyConfig, Passkeys
    from renkei.portal.settings import load_or_create_secret
    from renkei.witness import Witness
    from schemas.codec import default_codec

    given: dict[str, Any] = {
        "citizens": citizens, "audit_trust": audit_trust, "operator_key": operator_key,
        "secret_file": secret_file,
    }  # fmt: skip
    settings = PortalSettings(**{k: v for k, v in given.items() if v is not None})
    trust = PortalTrust.load(settings)
    codec = default_codec()
    auth = Authenticator(
        CitizenRegistry(settings.citizens), settings.portal_id,
        secret=load_or_create_secret(settings), challenge_ttl_s=settings.challenge_ttl_s,
        session_ttl_s=settings.session_ttl_s, resident_limit=settings.login_limit_resident,
        store=_storage(settings.limits_storage),
    )  # fmt: skip
    origins = tuple(o.strip() for o in settings.origins.split(",") if o.strip()) or (
        f"{'https' if settings.tls else 'http'}://{settings.rp_id}:{port}",
    )
    passkeys = Passkeys(auth, PasskeyConfig(settings.rp_id, origins), trust.audit_keys)
    # The witness remembers the latest tree heads across restarts: a trail rewritten
    # shorter or forked since is caught (docs/audit.md, "Witnesses").
    witness_state = settings.witness_state or (
        KafkaSettings().home / "witness" / f"{prefix}portal.hub.audit.json"
    )
    witness = Witness.load(witness_state, trust.audit_keys, codec)
    app = create_app(
        PortalIndex(TrailVerifier(trust.audit_keys, codec, witness=witness)), auth,
        kafka=KafkaSettings().kafka_kwargs(), topics=Topics(prefix), codec=codec, trust=trust,
        limits=LoginLimits(settings.login_limit_ip, settings.limits_storage), tls=settings.tls,
        stale_after_s=settings.stale_after_s, passkeys=passkeys,
    )  # fmt: skip
    uvicorn.run(
        app, host=host, port=port, log_level="warning",
        proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
    )  # fmt: skip


def _storage(uri: str) -> Storage:
    from limits.storage import Storage, storage_from_string

    try:
        storage = storage_from_string(uri)
    except Exception as exc:  # limits raises ConfigurationError, ImportError, ValueError
        raise ConfigurationError(f"RENKEI_PORTAL_LIMITS_STORAGE {uri!r}: {exc}") from exc
    if not isinstance(storage, Storage):
        raise ConfigurationError(f"RENKEI_PORTAL_LIMITS_STORAGE {uri!r} is an async storage")
    return storage


@portal_app.command("pin-operator")
@friendly_errors
def pin_operator(
    out: Annotated[Path, typer.Option(help="Where to write the operators' public key.")] = Path(
        ".renkei/keys/operator-public.json"
    ),
    key_dir: KeyDir = Path(".renkei/keys"),
) -> None:
    """Export the operators' public key for a portal to pin (run where the operators' key
    lives; hand the file to the portal out of band)."""
    from renkei.crypto import keystore
    from renkei.portal.settings import write_operator_key

    write_operator_key(out, keystore.load(key_dir, "operator").signing.public_bytes)
    console.print(f"wrote {out}")


@portal_app.command("offer")
@friendly_errors
def offer(
    resident_code: Annotated[str, typer.Option(help="The citizen's resident code.")],
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    ttl_days: Annotated[int, typer.Option(help="Days the code may be used.")] = 7,
) -> None:
    """The registry's counter: offer a passkey registration; prints the one-time code to
    hand to the citizen (it is not kept anywhere; a new offer revokes earlier passkeys)."""
    from renkei.crypto import keystore
    from renkei.portal.registrar import publish_offer

    if not (len(resident_code) == 11 and resident_code.isdigit()):
        raise ConfigurationError("a resident code is 11 digits")
    registry = keystore.load(key_dir, "registry").signing
    made, code = asyncio.run(
        publish_offer(KafkaSettings().kafka_kwargs(), Topics(prefix), registry, resident_code,
                      ttl_s=ttl_days * 86400)
    )  # fmt: skip
    console.print(f"offer {made.offer_id} for {resident_code}; registration code:")
    print("-".join(code[i : i + 4] for i in range(0, len(code), 4)))


@portal_app.command("registrar")
@friendly_errors
def registrar(key_dir: KeyDir = Path(".renkei/keys"), prefix: Prefix = "") -> None:
    """The hub side of passkey registration (runs until stopped): every offer the pinned
    registry key signed becomes a registration with the person's audit key, signed with
    the audit signing key, on hub.portal.registrations. Pins the registry's key as the hub
    does (RENKEI_HUB_REGISTRY_PUBLIC_KEY_FILE, default the bundle in the key folder)."""
    from hub_stream.settings import HubSettings
    from hub_stream.trust import load_roots
    from hub_stream.worker import load_hub_keys
    from renkei.auditchain import load_or_create_signer
    from renkei.portal.registrar import run_registrar

    settings = HubSettings(key_dir=key_dir)
    keyring, _ = load_hub_keys(settings)
    roots = load_roots(settings)
    console.print("registrar: following registry.portal")
    asyncio.run(
        run_registrar(KafkaSettings().kafka_kwargs(), Topics(prefix), keyring,
                      load_or_create_signer(key_dir), roots.registry)
    )  # fmt: skip


@portal_app.command("register-citizen")
@friendly_errors
def register(
    resident_code: Annotated[str, typer.Option(help="The citizen's resident code.")],
    public_key: Annotated[str, typer.Option(help="The citizen's Ed25519 public key, base64.")],
    citizens: Citizens = Path(".renkei/citizens.json"),
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
) -> None:
    """Register a citizen's public key (the registry's counter; needs the master secret to
    compute the person's audit key, which the portal then keeps instead)."""
    from hub_stream.settings import HubSettings
    from hub_stream.worker import load_hub_keys
    from renkei.audit.rebuild import audit_key_of_resident
    from renkei.portal import register_citizen

    keyring, _ = load_hub_keys(HubSettings(key_dir=key_dir))
    key = asyncio.run(
        audit_key_of_resident(
            KafkaSettings().kafka_kwargs(), Topics(prefix), keyring, resident_code
        )
    )
    if key is None:
        raise ConfigurationError(f"no person with resident code {resident_code} in the hub")
    register_citizen(citizens, resident_code, base64.b64decode(public_key), key)
    console.print(f"registered {resident_code}")


@portal_app.command("citizen-key")
@friendly_errors
def citizen_key(
    out: Annotated[Path, typer.Option(help="Where to write the new key file (mode 0600).")],
) -> None:
    """Make a citizen's key pair (stands in for the card); prints the public key."""
    from renkei.portal.citizens import write_citizen_key

    console.print(base64.b64encode(write_citizen_key(out)).decode())


@portal_app.command("sign")
@friendly_errors
def sign(
    key: Annotated[Path, typer.Option(help="The citizen's key file.")],
    resident_code: Annotated[str, typer.Option(help="The citizen's resident code.")],
    challenge: Annotated[str, typer.Option(help="The challenge the portal shows.")],
    portal_id: Annotated[str, typer.Option(help="The portal's id.")] = "renkei-portal",
) -> None:
    """Sign a login challenge (stands in for the card reader app); prints the signature."""
    from renkei.crypto import SigningKey
    from renkei.crypto._files import read_secret_file
    from renkei.portal import login_message

    try:
        document = json.loads(read_secret_file(key))
        signing = SigningKey.from_bytes(base64.b64decode(document["signing_key"]))
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"{key} is not a citizen key file") from exc
    message = login_message(portal_id, challenge, resident_code)
    print(base64.b64encode(signing.sign(message)).decode())
