"""Key rotation after a leak: a new key version for one agency, and its codes reissued.

An operator's :class:`~.control.RotateKey` command arrives on ``hub.control`` and is
applied inside the batch's transaction:

1. the agency's new key state (``current_version + 1``; the old version accepted until
   *now + grace*) is staged in the ``keys`` table, so every code the hub mints for the
   agency from this record on — later in the same batch too — is of the new version;
2. one ``LinkCodeRemap(old → new, key_version, old_codes_valid_until)`` per person the
   agency holds goes to ``agency.<id>.in``, keyed by the new code;
3. a ``KEY_ROTATED`` audit record.

The key state reaches ``hub.state.keys`` in the same transaction, and a restarted hub
reads it back before it processes anything. No other agency's keys, codes or state
change. After the grace period the old codes open to ``EXPIRED_LINK_CODE``.

**Big holders.** All remaps of one rotation go out in one transaction, ~35 µs each here
in strict mode (two codes minted, one Ed25519 signature, bytes spliced from one encoded
template), plus ~2 µs per person in the table to find whom the agency holds: a holder of
100,000 people makes a batch of a few seconds and ~25 MB, well inside Kafka's defaults
(transaction timeout 60 s). A holder of millions would make a transaction of minutes
and gigabytes; that wants remaps emitted in slices (a cursor in the key state, one slice
per batch) — not built yet (``docs/architecture.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from aiokafka import ConsumerRecord

from renkei.crypto import (
    LINK_CODE_LENGTH,
    MAX_KEY_VERSION,
    AgencyKeyState,
    KeyRing,
    MasterSecret,
    audit_key,
)
from renkei.errors import SignatureError
from schemas.models import AuditStep, ErrorCode, Header, LinkCodeRemap

from . import bulk_enrolment
from .context import FlowContext
from .control import CommandError, CommandShare, EnrolLinked, RotateKey, parse_command
from .ids import derive_id
from .outputs import Output
from .records import KeyStateRecord
from .refusals import parked
from .splice import Template
from .state import Table
from .trust import OPERATOR_ID

__all__ = ["StagedKeyRing", "handle_command", "rotate"]

log = logging.getLogger(__name__)


class StagedKeyRing(KeyRing):
    """The hub's key ring: each agency's key state comes from the hub's ``keys`` table.

    The table stages a batch's changes until its transaction commits, so a rotation takes
    effect for the rest of its batch and vanishes with the batch if the transaction
    aborts — the codes minted never run ahead of the key state on Kafka.

    :param master: the master secret.
    :param versions: initial key states (agencies the table does not list).
    """

    def __init__(
        self, master: MasterSecret, versions: Mapping[str, AgencyKeyState] | None = None
    ) -> None:
        super().__init__(master, versions)
        self._table: Table[KeyStateRecord] | None = None

    def follow(self, table: Table[KeyStateRecord]) -> None:
        """Take key states from ``table`` from now on."""
        self._table = table

    def state_of(self, agency_id: str) -> AgencyKeyState:
        if self._table is not None:
            record = self._table.get(agency_id)
            if record is not None:
                return record.state
        return super().state_of(agency_id)

    def current_version(self, agency_id: str) -> int:
        return self.state_of(agency_id).current_version


def handle_command(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], share: CommandShare | None = None
) -> list[Output]:
    """One ``hub.control`` record: check who sent it and that it is no replay, then apply it
    (a rotation here, bulk linkage in :mod:`.bulk_enrolment`).

    The signature is checked against the operators' pinned key (:mod:`.trust`) in every
    signature mode: the directory's ``operator`` entry is not asked. A command is applied
    once: its id is remembered for the replay window (:mod:`.replays`), and a command
    requested further from now than that window is refused too, since the hub could no
    longer tell it from a replay.

    ``share``: a partitioned hub's bucket applies its share of a command sent to every
    bucket (:class:`~.control.CommandShare`): its rows only, and a refusal written by one
    copy alone. ``None``: the whole command (the single hub).
    """
    speaks = share is None or share.speaks
    refuse = _refusal(speaks)
    try:
        command = parse_command(record.value)
    except CommandError as exc:
        return refuse(ctx, record, ErrorCode.MALFORMED_MESSAGE, str(exc))
    try:
        command.verify(ctx.roots.operator)
    except SignatureError:
        return refuse(
            ctx, record, ErrorCode.BAD_SIGNATURE, "not signed by the pinned operators' key"
        )
    now_ms = int(ctx.now().timestamp() * 1000)
    if abs(now_ms - command.requested_at_ms) > ctx.replays.window_ms:
        return refuse(
            ctx, record, ErrorCode.DUPLICATE,
            f"requested at {command.requested_at_ms}, further from now than the replay "
            f"window ({ctx.replays.window_ms} ms): send a new command",
        )  # fmt: skip
    if not ctx.replays.first_time(OPERATOR_ID, command.command_id, now_ms):
        return refuse(
            ctx, record, ErrorCode.DUPLICATE, f"command {command.command_id} was applied already"
        )
    if ctx.directory.agency(command.agency_id) is None:
        return refuse(
            ctx, record, ErrorCode.UNKNOWN_AGENCY, f"{command.agency_id} is not an active agency"
        )
    if isinstance(command, EnrolLinked):
        return bulk_enrolment.enrol_linked(ctx, command, share.rows if share else None)
    return rotate(ctx, command, record, speaks)


def rotate(
    ctx: FlowContext,
    command: RotateKey,
    record: ConsumerRecord[bytes, bytes],
    speaks: bool = True,
) -> list[Output]:
    """Move the agency to a new key version and send it the remap of every code it holds.

    :param speaks: write a refusal (``False``: another bucket's copy writes it).
    """
    refuse = _refusal(speaks)
    agency = command.agency_id
    applied = ctx.keys.get(agency)
    if applied is not None and applied.command_id == command.command_id:
        ctx.metrics["control.duplicate"] += 1  # the same command sent twice
        return []
    if not isinstance(ctx.keyring, StagedKeyRing):
        return refuse(ctx, record, ErrorCode.INTERNAL, "this hub's key ring cannot rotate")
    old = ctx.keyring.state_of(agency)
    if old.current_version >= MAX_KEY_VERSION:
        return refuse(ctx, record, ErrorCode.INTERNAL, f"{agency} has used every key version")
    now = ctx.now()
    if old.previous_valid_until is not None and now < old.previous_valid_until:
        log.warning(
            "agency %s: rotating again ends the grace period of version %s early",
            agency,
            old.previous_version,
        )
    new = AgencyKeyState(
        current_version=old.current_version + 1,
        previous_version=old.current_version,
        previous_valid_until=now + timedelta(milliseconds=command.grace_ms),
        rotated_at=now,
    )
    held = _held(ctx, agency)
    old_codes = [ctx.links.mint(agency, id_code) for _, id_code in held]
    ctx.keys.put(
        agency,
        KeyStateRecord(
            agency_id=agency, state=new, command_id=command.command_id,
            requested_by=command.requested_by, remapped=len(held),
        ),
    )  # fmt: skip
    assert new.previous_valid_until is not None
    topic = ctx.topics.agency_in(agency)
    strict = ctx.strict
    # Every remap differs only in its id and two codes: encode once, splice (.splice).
    id_slot = derive_id("remap-template", command.command_id)
    old_slot, new_slot = "y" * LINK_CODE_LENGTH, "z" * LINK_CODE_LENGTH
    remap = LinkCodeRemap(
        header=Header.new("hub", command.command_id, message_id=id_slot),
        old_link_code=old_slot,
        new_link_code=new_slot,
        key_version=new.current_version,
        old_codes_valid_until=new.previous_valid_until,
    )
    template = Template.build(ctx.codec, remap, (id_slot, old_slot, new_slot))
    outputs: list[Output] = []
    for (key, id_code), old_code in zip(held, old_codes, strict=True):
        new_code = ctx.links.mint(agency, id_code)  # of the new version: staged above
        message_id = derive_id("remap", command.command_id, key)
        data = template.fill((message_id, old_code, new_code)) if template is not None else None
        if data is None or template is None:  # the ordinary way: same bytes, slower
            header = remap.header.model_copy(update={"message_id": message_id})
            update = {"header": header, "old_link_code": old_code, "new_link_code": new_code}
            outputs.append(ctx.send(topic, new_code, remap.model_copy(update=update)))
            continue
        if strict:
            data = template.sign(data, ctx.sign(data))
        outputs.append(Output(topic, new_code.encode(), data))
    outputs.append(
        ctx.audit.record(
            AuditStep.KEY_ROTATED, cause=command.command_id, actor=command.requested_by,
            provider=agency,
        )
    )  # fmt: skip
    ctx.metrics["remaps"] += len(held)
    log.info(
        "agency %s: key version %d, version %d accepted until %s; %d codes remapped",
        agency, new.current_version, old.current_version, new.previous_valid_until, len(held),
    )  # fmt: skip
    return outputs


def _held(ctx: FlowContext, agency: str) -> list[tuple[str, bytes]]:
    """(audit key, ID code) of every person ``agency`` holds, staged holdings included."""
    keys = ctx.indexes.held_by(agency)
    if not keys:
        return []
    # Holdings know the audit key only. Inverting it takes one HMAC per person in the
    # table (~2 µs each): seconds for millions, once per rotation.
    id_codes: dict[str, bytes] = {}
    for id_hex in ctx.indexes.id_codes():
        id_code = bytes.fromhex(id_hex)
        key = audit_key(ctx.keyring, id_code)
        if key in keys:
            id_codes[key] = id_code
    return sorted(id_codes.items())


_Refuse = Callable[[FlowContext, ConsumerRecord[bytes, bytes], ErrorCode, str], list[Output]]


def _refusal(speaks: bool) -> _Refuse:
    """How this copy of a command refuses: aloud, or silently (another copy says it)."""
    return _refuse if speaks else _refuse_silently


def _refuse_silently(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], code: ErrorCode, detail: str
) -> list[Output]:
    """Another bucket's copy of this command parks and audits the same refusal."""
    ctx.metrics[f"control_refused_silently.{code}"] += 1
    return []


def _refuse(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], code: ErrorCode, detail: str
) -> list[Output]:
    """A command the hub will not apply: parked in the dead letters, and audited."""
    cause = derive_id("control", record.topic, str(record.partition), str(record.offset))
    ctx.metrics[f"control_refused.{code}"] += 1
    return [
        parked(ctx, record, code, detail, cause),
        ctx.audit.record(AuditStep.REFUSED, cause=cause, actor="operator", error_code=code),
    ]
