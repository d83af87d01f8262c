"""``renkei portal serve | register-citizen | citizen-key | sign``: the citizen portal.

``citizen-key`` and ``sign`` stand in for the My Number card and its reader app: the
first makes a citizen's key pair, the second signs the portal's login challenge.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Annotated

import typer

from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, friendly_errors

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
_CITIZEN_FORMAT = "renkei-citizen-key/1"


@portal_app.command("serve")
@friendly_errors
def serve(
    citizens: Citizens = Path(".renkei/citizens.json"),
    prefix: Prefix = "",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    portal_id: Annotated[str, typer.Option(help="Names this portal in signatures.")] = (
        "renkei-portal"
    ),
    secure_cookies: Annotated[bool, typer.Option(help="Behind HTTPS: Secure cookies.")] = False,
) -> None:
    """Serve the portal; it follows hub.audit and answers from memory."""
    import uvicorn

    from renkei.portal import Authenticator, CitizenRegistry, PortalIndex, create_app
    from schemas.codec import default_codec

    app = create_app(
        PortalIndex(),
        Authenticator(CitizenRegistry(citizens), portal_id),
        kafka=KafkaSettings().kafka_kwargs(),
        topics=Topics(prefix),
        codec=default_codec(),
        secure_cookies=secure_cookies,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


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
    from renkei.crypto import SigningKey
    from renkei.crypto._files import write_secret_file

    key = SigningKey.generate()
    public = base64.b64encode(key.public_bytes).decode()
    document = {
        "format": _CITIZEN_FORMAT,
        "signing_key": base64.b64encode(key.to_bytes()).decode(),
        "public_key": public,
    }
    write_secret_file(out, (json.dumps(document) + "\n").encode())
    console.print(public)


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
