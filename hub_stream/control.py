"""Operator commands to the hub, on ``hub.control``; today one: rotate an agency's key.

A command is a small JSON document signed by the operators' Ed25519 key (the one the hub
pins in its configuration, :mod:`.trust`; never the ``operator`` entry of
``hub.directory``). It goes through the hub's transactional loop like any
input, so what it causes — the new key state in ``hub.state.keys``, a ``LinkCodeRemap``
per person to the agency, a ``KEY_ROTATED`` audit record — is written atomically with the
command's offset: applied exactly once, or not at all.

``hub.control`` has one partition (commands are rare and their order matters), is keyed
``keys/<agency id>``, and is hub-internal like ``hub.state.*``: JSON, not part of the
agencies' Avro contract. Signed bytes: the command's JSON with ``signature`` left out,
keys sorted, no spaces, UTF-8.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from renkei.crypto import SigningKey, verify
from renkei.errors import ContractError
from renkei.topics import Topics, TopicSpec
from schemas.models import AGENCY_ID_PATTERN, MESSAGE_ID_PATTERN, new_message_id

__all__ = [
    "CommandError",
    "RotateKey",
    "control_spec",
    "control_topic",
    "parse_command",
]

_RETENTION_MS = 30 * 24 * 3600 * 1000


class CommandError(ContractError):
    """Bytes on ``hub.control`` that are not a command the hub knows."""


def control_topic(topics: Topics) -> str:
    """``hub.control`` under the deployment's prefix."""
    return topics.control


def control_spec(topics: Topics) -> TopicSpec:
    """One partition, kept 30 days: commands are rare, ordered, and read once by the hub."""
    return TopicSpec(control_topic(topics), 1, {"retention.ms": str(_RETENTION_MS)})


class RotateKey(BaseModel):
    """Move an agency to a new link-code key version (``renkei keys rotate``).

    The hub accepts the agency's old codes for ``grace_ms`` after it applies the command,
    and says until when in every ``LinkCodeRemap``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: Literal["rotate-key"] = "rotate-key"
    command_id: Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)] = Field(
        default_factory=new_message_id
    )
    """Unique id: the hub applies a command once, and derives its outputs' ids from it."""
    agency_id: Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]
    grace_ms: int = Field(ge=0)
    """How long the agency's codes of the version being retired keep working."""
    requested_by: str = "operator"
    requested_at_ms: int = Field(default_factory=lambda: int(time.time() * 1000))
    signature: str = ""
    """Base64 Ed25519 signature of :meth:`signing_payload` by the operators' key."""

    def signing_payload(self) -> bytes:
        fields = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: SigningKey) -> RotateKey:
        signature = base64.b64encode(key.sign(self.signing_payload())).decode()
        return self.model_copy(update={"signature": signature})

    def verify(self, public_key: bytes) -> None:
        """Raise :class:`renkei.errors.SignatureError` unless ``public_key`` signed this."""
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except ValueError:
            signature = b""
        verify(public_key, self.signing_payload(), signature)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def key(self) -> bytes:
        return f"keys/{self.agency_id}".encode()


def parse_command(value: bytes | None) -> RotateKey:
    """The command in a ``hub.control`` record.

    :raises CommandError: not JSON, or not a command the hub knows.
    """
    if value is None:
        raise CommandError("an empty record is no command")
    try:
        return RotateKey.model_validate_json(value)
    except ValidationError as exc:
        # Kinds and locations only: pydantic's messages may quote the input.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<command>'}: {e['type']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise CommandError(f"not a hub command: {problems}") from exc
