"""Operator commands to the hub, on ``hub.control``: rotate a key, enrol linked records.

A command is a small JSON document signed by the operators' Ed25519 key (the one the hub
pins in its configuration, :mod:`.trust`; never the ``operator`` entry of
``hub.directory``). It goes through the hub's transactional loop like any
input, so what it causes — for a rotation the new key state in ``hub.state.keys``, a
``LinkCodeRemap`` per person to the agency, a ``KEY_ROTATED`` audit record; for bulk
linkage the holdings, an ``EnrolmentResult`` per record and its audit record — is written
atomically with the command's offset: applied exactly once, or not at all.

``hub.control`` has one partition (commands are rare and their order matters), is keyed
``keys/<agency id>`` or ``enrol/<agency id>``, and is hub-internal like ``hub.state.*``:
JSON, not part of the agencies' Avro contract. Signed bytes: the command's JSON with
``signature`` left out, keys sorted, no spaces, UTF-8. The ``command`` field names the
kind (:data:`Command`).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Annotated, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from renkei.crypto import SigningKey, verify
from renkei.errors import ContractError
from renkei.topics import Topics, TopicSpec
from schemas import limits
from schemas.models import AGENCY_ID_PATTERN, MESSAGE_ID_PATTERN, new_message_id

__all__ = [
    "MAX_LINKED_ROWS",
    "Command",
    "CommandError",
    "CommandShare",
    "EnrolLinked",
    "LinkedRow",
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


class _Signed(BaseModel):
    """What every command has: an id, the agency it is about, who asked when, a signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)] = Field(
        default_factory=new_message_id
    )
    """Unique id: the hub applies a command once, and derives its outputs' ids from it."""
    agency_id: Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]
    requested_by: str = "operator"
    requested_at_ms: int = Field(default_factory=lambda: int(time.time() * 1000))
    signature: str = ""
    """Base64 Ed25519 signature of :meth:`signing_payload` by the operators' key."""

    def signing_payload(self) -> bytes:
        fields = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: SigningKey) -> Self:
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


class RotateKey(_Signed):
    """Move an agency to a new link-code key version (``renkei keys rotate``).

    The hub accepts the agency's old codes for ``grace_ms`` after it applies the command,
    and says until when in every ``LinkCodeRemap``.
    """

    command: Literal["rotate-key"] = "rotate-key"
    grace_ms: int = Field(ge=0)
    """How long the agency's codes of the version being retired keep working."""

    def key(self) -> bytes:
        return f"keys/{self.agency_id}".encode()


MAX_LINKED_ROWS: Final = 1_000
"""Rows in one :class:`EnrolLinked`; the CLI also keeps each command under the record
limit (:data:`schemas.limits.MESSAGE_BYTES`), whichever comes first."""

_RUN_PATTERN: Final = r"^[0-9A-Za-z][0-9A-Za-z._:-]{0,127}$"
_PRINTABLE: Final = r"^[^\x00-\x1f\x7f]+$"  # a reviewer's id: no control characters


class LinkedRow(BaseModel):
    """One agency record and the person a linkage run, or a reviewer, tied it to.

    Exactly one of ``score`` (a row of ``linked.csv``: the run decided) and
    ``reviewed_by`` (a row a person confirmed after review).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_ref: Annotated[str, StringConstraints(min_length=1, max_length=limits.ID)]
    resident_code: Annotated[
        str, StringConstraints(max_length=limits.RESIDENT_CODE, pattern=r"^[0-9]{11}$")
    ]
    score: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    reviewed_by: (
        Annotated[str, StringConstraints(max_length=limits.ID, pattern=_PRINTABLE)] | None
    ) = None

    @model_validator(mode="after")
    def _decided_once(self) -> Self:
        if (self.score is None) == (self.reviewed_by is None):
            raise ValueError("a row carries either its score or its reviewer")
        return self


class EnrolLinked(_Signed):
    """Enrol an agency's records that bulk linkage tied to persons (``renkei link enrol``).

    The hub does not match again: each row names the person by resident code, as the
    linkage run (``linkage_run``) or a reviewer decided. It holds the person for the
    agency, sends the agency an ``EnrolmentResult`` and audits the step with the run and
    the row's score or reviewer (:mod:`.bulk_enrolment`).
    """

    command: Literal["enrol-linked"] = "enrol-linked"
    linkage_run: Annotated[str, StringConstraints(pattern=_RUN_PATTERN)]
    """The run's identity (``renkei.linkage.identity``), written into every audit record."""
    capacity: Annotated[str, StringConstraints(max_length=limits.CAPACITY)] = ""
    """What the agency holds these persons as, as in an ``EnrolmentRequest``."""
    rows: Annotated[tuple[LinkedRow, ...], Field(min_length=1, max_length=MAX_LINKED_ROWS)]

    @model_validator(mode="after")
    def _refs_once(self) -> Self:
        if len({row.record_ref for row in self.rows}) != len(self.rows):
            raise ValueError("a record_ref repeats within the command")
        return self

    def key(self) -> bytes:
        return f"enrol/{self.agency_id}".encode()


@dataclass(frozen=True, slots=True)
class CommandShare:
    """One bucket's share of a signed command the partitioned router sent to every bucket.

    Every bucket applies a command to the state it owns (a rotation remaps its holders);
    what concerns the command as a whole is said once: its refusal (``DUPLICATE``,
    ``UNKNOWN_AGENCY``) only by the copy that ``speaks``, and each row of an
    :class:`EnrolLinked` only by the bucket of its person (``rows``).

    :param speaks: this copy writes the command's refusal (dead letter and audit); the
        other copies refuse it silently.
    :param rows: for an :class:`EnrolLinked`, the indexes into ``rows`` this bucket
        handles; ``None``: every row (a rotation, or a command not broadcast).
    """

    speaks: bool
    rows: frozenset[int] | None = None


Command = Annotated[RotateKey | EnrolLinked, Field(discriminator="command")]
"""Every command the hub knows, told apart by its ``command`` field."""

_COMMAND: TypeAdapter[RotateKey | EnrolLinked] = TypeAdapter(Command)


def parse_command(value: bytes | None) -> RotateKey | EnrolLinked:
    """The command in a ``hub.control`` record.

    :raises CommandError: not JSON, or not a command the hub knows.
    """
    if value is None:
        raise CommandError("an empty record is no command")
    try:
        return _COMMAND.validate_json(value)
    except ValidationError as exc:
        # Kinds and locations only: pydantic's messages may quote the input.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<command>'}: {e['type']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise CommandError(f"not a hub command: {problems}") from exc
