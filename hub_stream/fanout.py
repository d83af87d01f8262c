"""Life-event fan-out: each registry event, translated, to the agencies that must learn it.

Who learns of an **original** event (:func:`recipients`): every agency whose holding of the
person *covers the event's time* and whose directory entry entitles it to the kind. A
holding covers the event when it began no later than the registry sent the event
(``Holding.since_ms <= header.sent_at``). Not the effective date: the registry may publish
a change long after it took effect in law, and every agency holding the person by then
needs it; an agency that enrols later is matched against the person as they are by then.

Who learns of a **correction or annulment** (:func:`told_of`): exactly the agencies that
were told of the event it names (recorded in the person's row), as long as they still
hold the person. Entitlement is not checked again: they are withdrawing or amending what
they were told. An agency that has de-enrolled hears nothing more about the person.

Each notice carries the receiving agency's own link code and is keyed by it, so one
person's notices stay in order in one partition of the agency's ``.in`` topic.

Reads ``holdings``, who holds whom and the directory's entitlements; stages nothing;
emits the notices and a NOTIFIED audit record for each.
"""

from __future__ import annotations

from renkei.crypto import LINK_CODE_LENGTH
from schemas.models import AuditStep, EventAction, EventKind, Header, LifeEventNotice, RegistryEvent

from .context import FlowContext
from .ids import derive_id
from .outputs import Output
from .records import AppliedEvent
from .splice import Template

__all__ = ["notify", "recipients", "told_of"]

_CODE_SLOT = "z" * LINK_CODE_LENGTH  # where each agency's code goes (found once, or no template)
# The counter of each kind's notices, named once (the metrics' notices by kind).
_NOTICES_OF = {kind: f"notices.{kind.value.lower()}" for kind in EventKind}


def recipients(ctx: FlowContext, event: RegistryEvent, audit_key: str) -> tuple[str, ...]:
    """The agencies an original event goes to, in a fixed (sorted) order."""
    holders = ctx.indexes.holders(audit_key)
    if not holders:
        return ()
    sent_ms = int(event.header.sent_at.timestamp() * 1000)
    chosen = []
    for agency in sorted(holders):
        holding = ctx.holdings.get(f"{audit_key}|{agency}")
        if holding is None or holding.since_ms > sent_ms:
            continue
        if ctx.directory.entitled(agency, event.kind):
            chosen.append(agency)
    return tuple(chosen)


def told_of(ctx: FlowContext, original: AppliedEvent, audit_key: str) -> tuple[str, ...]:
    """The agencies a correction or annulment of ``original`` goes to."""
    return tuple(
        agency
        for agency in original.notified
        if ctx.holdings.get(f"{audit_key}|{agency}") is not None
        and ctx.directory.agency(agency) is not None
    )


def notify(
    ctx: FlowContext, event: RegistryEvent, id_code: str, audit_key: str, agencies: tuple[str, ...]
) -> list[Output]:
    """One notice per agency under its own link code, each with a NOTIFIED audit record."""
    if not agencies:
        return []
    person = bytes.fromhex(id_code)
    cause = event.header.message_id
    # One notice is validated and encoded per event; each agency's copy differs only in
    # its message id and link code, spliced into the bytes (:mod:`.splice`).
    id_slot, code_slot = derive_id("notice-template", cause), _CODE_SLOT
    notice = LifeEventNotice(
        header=Header.new("hub", cause, message_id=id_slot),
        link_code=code_slot,
        event_id=event.event_id,
        kind=event.kind,
        action=event.action,
        corrects_event_id=event.corrects_event_id,
        effective_date=event.effective_date,
        body=event.body,
    )
    template = Template.build(ctx.codec, notice, (id_slot, code_slot))
    told = (event.kind,) if event.action is EventAction.ORIGINAL else (event.kind, event.action)
    outputs: list[Output] = []
    for agency in agencies:
        link_code = ctx.links.mint(agency, person)
        message_id = derive_id("notice", cause, agency)
        topic = ctx.topics.agency_in(agency)
        data = template.fill((message_id, link_code)) if template is not None else None
        if data is None or template is None:  # the ordinary way: same bytes, slower
            header = notice.header.model_copy(update={"message_id": message_id})
            copy = notice.model_copy(update={"header": header, "link_code": link_code})
            outputs.append(ctx.send(topic, link_code, copy))
        else:
            if ctx.strict:
                data = template.sign(data, ctx.sign(data))
            outputs.append(Output(topic, link_code.encode(), data))
        outputs.append(
            ctx.audit.record(
                AuditStep.NOTIFIED, cause=derive_id("notified", cause, agency), actor="hub",
                audit_key=audit_key, provider="registry", requester=agency, items=told,
            )
        )  # fmt: skip
    ctx.metrics["notices"] += len(agencies)
    ctx.metrics[_NOTICES_OF[event.kind]] += len(agencies)
    return outputs
