"""``renkei keys ...`` and ``renkei directory ...``: keys, onboarding and the directory.

Onboarding an agency takes its public keys only (``docs/operations.md``, "Onboarding an
agency"): the agency runs ``keys agency-init``, the hub's host ``keys hub-init``; both send
their public bundles to the operators, who run ``directory publish --public-keys``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from renkei.crypto import DEFAULT_SUITE, SUITES, SuiteName
from renkei.crypto._files import write_public_file
from renkei.crypto.bundles import HUB_ID, bundle_path, read_bundle, write_bundle
from renkei.errors import ConfigurationError
from renkei.operator.commands import rotate
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.onboarding import agency_init, export_public, hub_init, master_from_environment
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, friendly_errors

__all__ = ["directory_app", "keys_app"]

keys_app = typer.Typer(help="Key material of the hub and of local agencies.", no_args_is_help=True)
directory_app = typer.Typer(help="The agency directory and scenario table.", no_args_is_help=True)

KeyDir = Annotated[Path, typer.Option(help="Where key files live.", envvar="RENKEI_HUB_KEY_DIR")]
DirectoryPath = Annotated[
    Path | None, typer.Option("--file", help="Directory file; the packaged sample by default.")
]
Prefix = Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")]


@keys_app.command("init")
@friendly_errors
def init(key_dir: KeyDir = Path(".renkei/keys"), file: DirectoryPath = None) -> None:
    """Local demo: master secret, hub key and every party's keys and bundles in one folder."""
    created = init_keys(key_dir, file)
    _say(f"created keys for: {', '.join(created)}" if created else "all keys exist")


@keys_app.command("agency-init")
@friendly_errors
def agency_init_command(
    agency: Annotated[str, typer.Option("--agency", help="Your agency id.")],
    out: Annotated[Path, typer.Option("--out", help="Your key folder (created 0700).")],
    suite: Annotated[
        str, typer.Option(help="Sealing suite: X25519 or MLKEM768_X25519 (hybrid).")
    ] = DEFAULT_SUITE,
    csr: Annotated[
        bool, typer.Option(help="Also make a TLS client key and certificate request.")
    ] = True,
) -> None:
    """An agency makes its own keys; prints what to send the operators (public only)."""
    files = agency_init(out, agency, _suite(suite), csr=csr)
    _say(f"private keys (keep here, never send): {files.private_key}")
    if files.tls_key is not None:
        _say(f"TLS client key (keep here, never send): {files.tls_key}")
    _say(f"send the operators: {files.bundle}")
    if files.csr is not None:
        _say(f"send the operators' CA: {files.csr}")
    _say(f"fingerprint (read it to the operators): {files.public.fingerprint()}")


@keys_app.command("hub-init")
@friendly_errors
def hub_init_command(key_dir: KeyDir = Path(".renkei/keys")) -> None:
    """On the hub's host: master secret (unless RENKEI_MASTER_KEY is set), signing key, bundle."""
    created = hub_init(key_dir, master=not master_from_environment())
    _say(f"created: {', '.join(created)}" if created else "all keys exist")
    path = bundle_path(key_dir, HUB_ID)
    _say(f"send the operators: {path}")
    _say(f"fingerprint: {read_bundle(path).fingerprint()}")


@keys_app.command("export-public")
@friendly_errors
def export_public_command(
    agency: Annotated[str, typer.Option("--agency", help="The key file's agency, or 'hub'.")],
    key_dir: KeyDir = Path(".renkei/keys"),
    out: Annotated[
        Path | None, typer.Option("--out", help="File or folder; the key folder by default.")
    ] = None,
) -> None:
    """Write the public bundle of a key file: public keys only, safe to send."""
    path, public = export_public(key_dir, agency, out)
    _say(f"wrote {path}")
    _say(f"fingerprint: {public.fingerprint()}")


@keys_app.command("fingerprint")
@friendly_errors
def fingerprint_command(
    bundles: Annotated[list[Path], typer.Argument(help="Public bundles to check and show.")],
) -> None:
    """Check public bundles and print their fingerprints, to compare with their senders."""
    for path in bundles:
        public = read_bundle(path)
        _say(f"{public.agency_id}: {public.fingerprint()}  ({path})")


@directory_app.command("publish")
@friendly_errors
def publish_command(
    key_dir: KeyDir = Path(".renkei/keys"),
    public_keys: Annotated[
        Path | None,
        typer.Option(help="Folder of public bundles (*.public.json); the key folder by default."),
    ] = None,
    file: DirectoryPath = None,
    prefix: Prefix = "",
) -> None:
    """Create the agencies' topics and publish the directory to hub.directory.

    Keys come from public bundles only; the one private key read is the operators' own
    (agency-operator.json in --key-dir), to sign the entries.
    """
    count = asyncio.run(publish(KafkaSettings(), prefix, key_dir, file, public_keys))
    _say(f"published {count} directory entries")


@directory_app.command("hub-key")
@friendly_errors
def hub_key_command(
    operator_bundle: Annotated[
        Path, typer.Option(help="The operators' public bundle, pinned out of band.")
    ],
    out: Annotated[Path, typer.Option("--out", help="File or folder for hub.public.json.")],
    prefix: Prefix = "",
) -> None:
    """Fetch the hub's verification key from hub.directory, checked against the operators'."""
    operator = read_bundle(operator_bundle)
    public = asyncio.run(
        hub_key_from_directory(
            KafkaSettings().kafka_kwargs(), Topics(prefix), operator.signing_public_key
        )
    )
    if out.is_dir():
        out = write_bundle(out, public)
    else:
        write_public_file(out, public.to_bundle())
    _say(f"wrote {out}")
    _say(f"fingerprint: {public.fingerprint()}")


def _say(text: str) -> None:
    # Unwrapped: paths and fingerprints are copied from the terminal whole.
    console.print(text, soft_wrap=True)


def _suite(name: str) -> SuiteName:
    if name not in SUITES:
        raise ConfigurationError(f"unknown sealing suite {name!r}; choose from {', '.join(SUITES)}")
    return name


@keys_app.command("rotate")
@friendly_errors
def rotate_command(
    agency: Annotated[str, typer.Option("--agency", help="The agency whose key leaked.")],
    grace_s: Annotated[
        float, typer.Option("--grace-s", help="How long its old link codes keep working.")
    ] = 7 * 24 * 3600,
    wait_s: Annotated[
        float, typer.Option("--wait-s", help="Wait this long for the hub to apply it; 0: don't.")
    ] = 60,
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
) -> None:
    """Rotate an agency's link-code key: new codes for everyone it holds, old ones expire."""
    state = asyncio.run(rotate(KafkaSettings(), prefix, key_dir, agency, grace_s, wait_s))
    if state is None:
        _say(f"rotation of {agency} requested; the hub sends the remaps when it runs")
        return
    s = state.state
    console.print(
        f"{agency}: link-code key version {s.current_version} since {_when(s.rotated_at)}; "
        f"codes of version {s.previous_version} accepted until "
        f"{_when(s.previous_valid_until)}, then refused with EXPIRED_LINK_CODE; "
        f"{state.remapped} LinkCodeRemap messages sent"
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="milliseconds")
