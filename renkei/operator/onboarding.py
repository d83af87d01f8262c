"""Onboarding: every party makes its own keys and hands over public ones only.

An agency (and likewise the registry, and the operators for their own signing key) runs
:func:`agency_init` on its own machine: its private key file stays there (mode 0600 in a
0700 folder); it sends the operators its public bundle and, for its Kafka identity, a
certificate request. The hub's host runs :func:`hub_init` and sends the operators the
hub's bundle. The operators put the bundles in one folder and publish the directory from
it (:func:`renkei.operator.publish.publish`), which never reads a private key but their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from renkei.crypto import DEFAULT_SUITE, AgencyPublicKeys, MasterSecret, SuiteName, keystore
from renkei.crypto._files import ensure_private_dir, write_public_file, write_secret_file
from renkei.crypto.bundles import HUB_ID, bundle_path, write_bundle
from renkei.crypto.keyring import MASTER_KEY_ENV, check_agency_id
from renkei.crypto.tls import certificate_request
from renkei.errors import ConfigurationError

__all__ = [
    "MASTER_FILE",
    "AgencyFiles",
    "agency_init",
    "csr_path",
    "export_public",
    "hub_init",
    "master_from_environment",
    "tls_key_path",
]

MASTER_FILE = "master.key"
"""The master secret's file name in the hub's key folder."""


@dataclass(frozen=True, slots=True)
class AgencyFiles:
    """What :func:`agency_init` wrote; only ``bundle`` and ``csr`` leave the agency."""

    private_key: Path
    """The signing and sealing keys (0600): never leaves the agency."""
    bundle: Path
    """The public bundle (0644): for the operators."""
    tls_key: Path | None
    """The Kafka TLS client key (0600), if a request was made: never leaves the agency."""
    csr: Path | None
    """The certificate request (0644), for the operators' CA."""
    public: AgencyPublicKeys
    """The published keys; ``public.fingerprint()`` is read to the operators out of band."""


def tls_key_path(directory: Path, agency_id: str) -> Path:
    """Where :func:`agency_init` keeps the Kafka TLS client key."""
    return directory / f"agency-{check_agency_id(agency_id)}.tls-key.pem"


def csr_path(directory: Path, agency_id: str) -> Path:
    """Where :func:`agency_init` writes the certificate request."""
    return directory / f"agency-{check_agency_id(agency_id)}.csr.pem"


def _valid_id(agency_id: str) -> str:
    try:
        check_agency_id(agency_id)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if agency_id == HUB_ID:
        raise ConfigurationError(f"{HUB_ID!r} is the hub's own id: use `renkei keys hub-init`")
    return agency_id


def agency_init(
    out: Path, agency_id: str, suite: SuiteName = DEFAULT_SUITE, *, csr: bool = True
) -> AgencyFiles:
    """Make ``agency_id``'s keys in ``out``: key file, public bundle, TLS key and request.

    :param suite: the sealing key's HPKE suite (``MLKEM768_X25519`` for the hybrid one).
    :param csr: also make a TLS client key and a PKCS#10 request with CN = ``agency_id``.
    :raises ConfigurationError: the id is invalid or reserved, or the agency already has
        keys in ``out`` (they are never replaced: run ``export-public`` to re-export).
    """
    _valid_id(agency_id)
    ensure_private_dir(out)
    keys = keystore.create(out, agency_id, suite)
    bundle = write_bundle(out, keys.public())
    tls_key = request = None
    if csr:
        key_pem, csr_pem = certificate_request(agency_id)
        tls_key, request = tls_key_path(out, agency_id), csr_path(out, agency_id)
        write_secret_file(tls_key, key_pem)
        write_public_file(request, csr_pem)
    return AgencyFiles(
        private_key=keystore.agency_key_path(out, agency_id),
        bundle=bundle,
        tls_key=tls_key,
        csr=request,
        public=keys.public(),
    )


def hub_init(key_dir: Path, *, master: bool = True) -> list[str]:
    """Make whatever the hub's key folder lacks: master secret, signing key, public bundle.

    :param master: create ``master.key`` if missing; pass ``False`` when the master
        secret comes from ``RENKEI_MASTER_KEY`` (or a KMS) instead.
    :returns: what was created, among ``master``, ``hub`` and ``hub.public.json``.
    """
    ensure_private_dir(key_dir)
    created: list[str] = []
    if master and not (key_dir / MASTER_FILE).exists():
        MasterSecret.generate_file(key_dir / MASTER_FILE)
        created.append("master")
    if not keystore.hub_key_path(key_dir).exists():
        keystore.create_hub_signing_key(key_dir)
        created.append(HUB_ID)
    if not bundle_path(key_dir, HUB_ID).exists():
        export_public(key_dir, HUB_ID)
        created.append(bundle_path(key_dir, HUB_ID).name)
    return created


def master_from_environment() -> bool:
    """Whether the hub takes its master secret from ``RENKEI_MASTER_KEY``."""
    return bool(os.environ.get(MASTER_KEY_ENV))


def export_public(
    key_dir: Path, agency_id: str, out: Path | None = None
) -> tuple[Path, AgencyPublicKeys]:
    """Write the public bundle of ``agency_id`` (or of the hub: ``hub``) from its key file.

    The private file is read (and checked) by its owner only; the bundle holds no private
    byte. Exporting the same keys twice is harmless.

    :param out: a file, or an existing folder (the usual name inside); ``key_dir`` by default.
    :returns: the bundle's path and its keys.
    :raises ConfigurationError: no key file, or ``out`` holds another bundle.
    """
    if agency_id == HUB_ID:
        public = keystore.hub_public_keys(keystore.load_hub_signing_key(key_dir))
    else:
        public = keystore.load(key_dir, _valid_id(agency_id)).public()
    target = out if out is not None else key_dir
    if target.is_dir():
        return write_bundle(target, public), public
    write_public_file(target, public.to_bundle())
    return target, public
