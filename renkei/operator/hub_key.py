"""The hub's verification key, as the operators published it in ``hub.directory``.

An agency checks that what arrives on its inbox was signed by the hub
(``AgencyClient(hub_public_key=...)``). It learns that key from the directory entry
``agency/hub``, and trusts it because the operators signed that entry with their key,
which the agency pins out of band (the operators' public bundle, compared by
fingerprint). Reading the directory needs Read on ``hub.directory``; without it, the
operators can hand the agency ``hub.public.json`` instead.
"""

from __future__ import annotations

from typing import Any

from hub_stream.directory import entry_key
from renkei.crypto import AgencyPublicKeys
from renkei.crypto.bundles import HUB_ID
from renkei.envelope import verify_bytes
from renkei.errors import ConfigurationError, SignatureError
from renkei.readers import read_to_end
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import AgencyEntry

__all__ = ["hub_key_from_directory", "latest_directory_value"]

_HUB_KEY = f"agency/{HUB_ID}".encode()


async def latest_directory_value(
    kafka: dict[str, Any], topics: Topics, key: bytes, timeout_s: float = 30
) -> bytes | None:
    """The newest value under ``key`` in ``hub.directory`` (``None``: absent or deleted).

    Reads the topic from the beginning to its end as of the call; compaction keeps the
    newest entry per key, and records written after the call are not waited for.

    :raises RequestTimeoutError: the topic could not be read to its end within ``timeout_s``.
    """
    latest: bytes | None = None
    async for record in read_to_end(kafka, topics.directory, timeout_s):
        if record.key == key:
            latest = record.value
    return latest


async def hub_key_from_directory(
    kafka: dict[str, Any],
    topics: Topics,
    operator_key: bytes,
    codec: Codec | None = None,
    timeout_s: float = 30,
) -> AgencyPublicKeys:
    """The hub's public key from its directory entry, checked against the operators' key.

    :param operator_key: the operators' Ed25519 public key, pinned by the caller.
    :raises ConfigurationError: the directory has no active entry for the hub.
    :raises SignatureError: the entry is not signed by ``operator_key``.
    :raises DecodeError: the entry is not a contract message.
    """
    codec = codec or default_codec()
    value = await latest_directory_value(kafka, topics, _HUB_KEY, timeout_s)
    if value is None:
        raise ConfigurationError(
            f"{topics.directory} has no entry for the hub: the operators publish it "
            "with `renkei directory publish`"
        )
    entry = codec.decode(value)
    if not isinstance(entry, AgencyEntry) or entry_key(entry) != _HUB_KEY:
        raise ConfigurationError(f"the record under {_HUB_KEY.decode()} is not the hub's entry")
    if entry.header.sender != "operator":
        raise SignatureError(f"the hub's entry was sent by {entry.header.sender!r}, not operator")
    verify_bytes(value, operator_key, codec)  # as published, whatever its schema version
    if not entry.active:
        raise ConfigurationError("the hub's directory entry is retired (active = false)")
    return AgencyPublicKeys(agency_id=HUB_ID, signing_public_key=entry.signing_public_key)
