"""Registry sync: the resident registry's events keep the hub's person table current.

A REGISTERED event gives the person an ID code derived from the event id (stable when the
hub replays the registry). Moves, renames, deaths and number reissues update the row;
the ID code — and so every agency's link code — never changes. A CORRECTION replaces the
facts of the event it names, an ANNULMENT undoes them (:mod:`.history` keeps what that
needs). Each applied event is then fanned out (:mod:`.fanout`): an original to the
holders entitled to it, a correction or annulment to exactly the agencies that were told
of the event it names. A registration reaches nobody: no agency can hold a person before
the registry has registered them.

Reads ``persons`` (and, through :mod:`.fanout`, who holds whom); stages ``persons`` (the
person index follows it); emits a REGISTRY_APPLIED audit record and the notices. The hub
hands it only events whose bytes the registry's pinned key signed (:mod:`.trust`).
"""

from __future__ import annotations

from renkei.crypto import audit_key, new_id_code
from schemas.models import AuditStep, EventAction, EventKind, RegistryEvent

from . import fanout, history
from .context import FlowContext
from .outputs import Output

__all__ = ["apply"]


def apply(ctx: FlowContext, event: RegistryEvent) -> list[Output]:
    """Apply one registry event (its signature checked) to the person table and fan it out."""
    person = ctx.persons.get(event.resident_code)
    recipients: tuple[str, ...] = ()
    try:
        if event.kind is EventKind.REGISTERED and event.action is EventAction.ORIGINAL:
            if person is not None:
                if history.find(person, event.event_id) is not None:
                    ctx.metrics["registry.duplicate"] += 1  # the registry sent it again
                    return []
                raise history.HistoryError("already registered: send a CORRECTION instead")
            person = history.register(new_id_code(ctx.keyring, event.event_id).hex(), event)
            key = audit_key(ctx.keyring, bytes.fromhex(person.id_code))
        elif person is None:
            return [_refused(ctx, event, "NOT_ENROLLED: no person with this resident code")]
        else:
            key = audit_key(ctx.keyring, bytes.fromhex(person.id_code))
            if event.action is EventAction.ORIGINAL:
                if history.find(person, event.event_id) is not None:
                    ctx.metrics["registry.duplicate"] += 1
                    return []
                recipients = fanout.recipients(ctx, event, key)
                person = history.apply_original(person, event, recipients)
            else:
                if event.action is EventAction.CORRECTION:
                    person, original = history.correct(person, event)
                else:
                    person, original = history.annul(person, event)
                recipients = fanout.told_of(ctx, original, key)
    except history.HistoryError as exc:
        return [_refused(ctx, event, f"MALFORMED_MESSAGE: {exc}")]
    ctx.persons.put(event.resident_code, person)
    ctx.metrics[f"registry.{event.kind}.{event.action}"] += 1
    outputs = [
        ctx.audit.record(
            AuditStep.REGISTRY_APPLIED, cause=event.header.message_id, actor="registry",
            audit_key=key,
        )
    ]  # fmt: skip
    return outputs + fanout.notify(ctx, event, person.id_code, key, recipients)


def _refused(ctx: FlowContext, event: RegistryEvent, reason: str) -> Output:
    code, _, _detail = reason.partition(":")
    ctx.metrics[f"registry_refused.{code}"] += 1
    return ctx.audit.record(
        AuditStep.REFUSED, cause=event.header.message_id, actor="registry", error_code=code
    )
