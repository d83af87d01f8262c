"""Registry sync: the resident registry's events keep the hub's person table current.

A REGISTERED event gives the person an ID code derived from the event id (stable when the
hub replays the registry). Moves, renames, deaths and number reissues update the row;
the ID code — and so every agency's link code — never changes. A CORRECTION replaces the
facts of the event it names, an ANNULMENT undoes them (:mod:`.history` keeps what that
needs). Each applied event is then fanned out (:mod:`.fanout`): an original to the
holders entitled to it, a correction or annulment to exactly the agencies that were told
of the event it names. A registration reaches nobody: no agency can hold a person before
the registry has registered them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from renkei.crypto import audit_key, new_id_code
from renkei.envelope import verify_message
from renkei.errors import SignatureError
from schemas.models import AuditStep, EventAction, EventKind, RegistryEvent

from . import fanout, history

if TYPE_CHECKING:
    from .hub import Hub
    from .outputs import Output

__all__ = ["apply"]


def apply(hub: Hub, event: RegistryEvent) -> list[Output]:
    """Apply one registry event to the person table and fan it out."""
    if hub.settings.signatures == "strict":
        registry = hub.directory.agency("registry")
        try:
            if registry is None:
                raise SignatureError("the registry's key is not in the directory")
            verify_message(event, registry.signing_public_key, hub.codec)
        except SignatureError as exc:
            return [_refused(hub, event, f"BAD_SIGNATURE: {exc}")]
    person = hub.persons.get(event.resident_code)
    recipients: tuple[str, ...] = ()
    try:
        if event.kind is EventKind.REGISTERED and event.action is EventAction.ORIGINAL:
            if person is not None:
                if history.find(person, event.event_id) is not None:
                    hub.metrics["registry.duplicate"] += 1  # the registry sent it again
                    return []
                raise history.HistoryError("already registered: send a CORRECTION instead")
            person = history.register(new_id_code(hub.keyring, event.event_id).hex(), event)
            key = audit_key(hub.keyring, bytes.fromhex(person.id_code))
        elif person is None:
            return [_refused(hub, event, "NOT_ENROLLED: no person with this resident code")]
        else:
            key = audit_key(hub.keyring, bytes.fromhex(person.id_code))
            if event.action is EventAction.ORIGINAL:
                if history.find(person, event.event_id) is not None:
                    hub.metrics["registry.duplicate"] += 1
                    return []
                recipients = fanout.recipients(hub, event, key)
                person = history.apply_original(person, event, recipients)
            else:
                if event.action is EventAction.CORRECTION:
                    person, original = history.correct(person, event)
                else:
                    person, original = history.annul(person, event)
                recipients = fanout.told_of(hub, original, key)
    except history.HistoryError as exc:
        return [_refused(hub, event, f"MALFORMED_MESSAGE: {exc}")]
    hub.persons.put(event.resident_code, person)
    hub.metrics[f"registry.{event.kind}.{event.action}"] += 1
    outputs = [
        hub.audit.record(
            AuditStep.REGISTRY_APPLIED, cause=event.header.message_id, actor="registry",
            audit_key=key,
        )
    ]  # fmt: skip
    return outputs + fanout.notify(hub, event, person.id_code, key, recipients)


def _refused(hub: Hub, event: RegistryEvent, reason: str) -> Output:
    code, _, _detail = reason.partition(":")
    hub.metrics[f"registry_refused.{code}"] += 1
    return hub.audit.record(
        AuditStep.REFUSED, cause=event.header.message_id, actor="registry", error_code=code
    )
