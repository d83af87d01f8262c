"""Which hub an agency believes: the hub's verification key, required unless opted out.

Everything on ``agency.<id>.in`` claims to come from the hub. Kafka ACLs say who may
write the topic *now*; the hub's Ed25519 signature says who wrote each message, and an
agency that skipped it would take a forged answer, notice or forwarded request from
anyone who ever got write access. So every inbox reader verifies by default, and a
reader without the hub's key refuses to be built (:class:`~renkei.errors.ConfigurationError`)
rather than read unverified.

Where the key comes from, first match wins:

1. ``hub_public_key=`` given to the reader or service: the raw 32 bytes, an
   :class:`~renkei.crypto.AgencyPublicKeys` of the hub, or the path of its public bundle;
2. ``RENKEI_HUB_PUBLIC_BUNDLE``: the path of the hub's public bundle, ``hub.public.json``.

Get the bundle with ``renkei directory hub-key --operator-bundle OPS.public.json --out
DIR`` (the ``agency/hub`` entry of ``hub.directory``, checked against the operators'
key the agency pinned), or from the operators, who export it with ``renkei keys
export-public --agency hub``; compare its fingerprint either way.

``verify_hub=False`` opts out, for tests and benchmarks that say so (a hub in
``trust-acl`` mode signs nothing); the reader logs a warning when it is built.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from renkei.crypto import AgencyPublicKeys
from renkei.crypto.bundles import HUB_ID, read_bundle
from renkei.errors import ConfigurationError

__all__ = ["HUB_BUNDLE_ENV", "HubKey", "TrustSettings", "hub_verification_key"]

log = logging.getLogger(__name__)

HUB_BUNDLE_ENV = "RENKEI_HUB_PUBLIC_BUNDLE"
"""The environment variable naming the hub's public bundle file."""

HubKey = bytes | AgencyPublicKeys | str | os.PathLike[str]
"""The hub's verification key: raw bytes, the hub's public keys, or its bundle's path."""


class TrustSettings(BaseSettings):
    """What an agency trusts, from the environment."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_", frozen=True, extra="ignore")

    hub_public_bundle: Path | None = Field(
        default=None,
        description="RENKEI_HUB_PUBLIC_BUNDLE: the hub's public bundle (hub.public.json), "
        "whose key every message on the agency's inbox must be signed with.",
    )


def _from_bundle(path: str | os.PathLike[str]) -> bytes:
    keys = read_bundle(path)
    if keys.agency_id != HUB_ID:
        raise ConfigurationError(
            f"{os.fspath(path)} is the bundle of {keys.agency_id!r}, not of the hub"
        )
    return keys.signing_public_key


def _checked(key: HubKey) -> bytes:
    if isinstance(key, AgencyPublicKeys):
        if key.agency_id != HUB_ID:
            raise ConfigurationError(f"hub_public_key holds the keys of {key.agency_id!r}")
        return key.signing_public_key
    if isinstance(key, bytes):
        try:  # the bundle's own check: 32 bytes that parse as an Ed25519 point
            AgencyPublicKeys(agency_id=HUB_ID, signing_public_key=key)
        except ValidationError:
            raise ConfigurationError(
                f"hub_public_key is not an Ed25519 public key ({len(key)} bytes)"
            ) from None
        return key
    return _from_bundle(key)


def hub_verification_key(
    hub_public_key: HubKey | None, *, verify_hub: bool, reader: str
) -> bytes | None:
    """The 32-byte key the inbox verifies with, or ``None`` when ``verify_hub`` is False.

    :param hub_public_key: the key given by the caller, if any.
    :param verify_hub: ``False`` only for tests and benchmarks that say so.
    :param reader: the inbox's name, for the messages.
    :raises ConfigurationError: verification is on and no key is configured, the key or
        bundle is unusable or not the hub's, or a key is given with ``verify_hub=False``.
    """
    if not verify_hub:
        if hub_public_key is not None:
            raise ConfigurationError(f"{reader}: hub_public_key given, but verify_hub=False")
        log.warning("%s: NOT verifying the hub's signatures (verify_hub=False)", reader)
        return None
    if hub_public_key is not None:
        return _checked(hub_public_key)
    bundle = TrustSettings().hub_public_bundle
    if bundle is None:
        raise ConfigurationError(
            f"{reader}: the hub's verification key is required. Pass hub_public_key= "
            f"(the key, or the path of hub.public.json) or set {HUB_BUNDLE_ENV}; get the "
            "bundle with `renkei directory hub-key --operator-bundle OPS.public.json "
            "--out DIR`, or from the operators. Only tests and benchmarks that say so "
            "pass verify_hub=False"
        )
    return _from_bundle(bundle)
