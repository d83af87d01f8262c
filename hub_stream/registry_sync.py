"""Registry sync: the resident registry's events keep the hub's person table current.

A REGISTERED event gives the person an ID code derived from the event id (stable when the
hub replays the registry). Moves, renames, deaths and number reissues update the row;
the ID code — and so every agency's link code — never changes. Each applied event is
then fanned out to the agencies holding the person (:mod:`.fanout`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from renkei.crypto import audit_key, new_id_code
from renkei.envelope import verify_message
from renkei.errors import SignatureError
from schemas.models import (
    AuditStep,
    EventAction,
    EventKind,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    RegistryEvent,
)

from . import fanout
from .records import PersonState

if TYPE_CHECKING:
    from .hub import Hub
    from .pipeline import Output

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
    body = event.body
    if event.kind is EventKind.REGISTERED and isinstance(body, PersonRegistered):
        if person is None:
            id_code = new_id_code(hub.keyring, event.event_id)
            person = PersonState(
                id_code=id_code.hex(), my_number=body.my_number, basic4=body.basic4
            )
        else:  # a correction of the registration: same person, corrected facts
            person = person.model_copy(update={"my_number": body.my_number, "basic4": body.basic4})
    elif person is None:
        return [_refused(hub, event, "NOT_ENROLLED: no person with this resident code")]
    elif event.action is EventAction.ANNULMENT:
        person = _annul(person, event)
    elif isinstance(body, PersonMoved):
        person = person.model_copy(
            update={"basic4": person.basic4.model_copy(update={"address": body.address})}
        )
    elif isinstance(body, PersonRenamed):
        basic4 = person.basic4.model_copy(update={"name": body.name, "name_kana": body.name_kana})
        person = person.model_copy(update={"basic4": basic4})
    elif isinstance(body, PersonDied):
        person = person.model_copy(update={"died_on": body.date_of_death})
    elif isinstance(body, NumberReissued):
        person = person.model_copy(update={"my_number": body.my_number})
    else:
        return [_refused(hub, event, f"MALFORMED_MESSAGE: {event.kind} without its body")]
    hub.persons.put(event.resident_code, person)
    key = audit_key(hub.keyring, bytes.fromhex(person.id_code))
    outputs = [
        hub.audit.record(
            AuditStep.REGISTRY_APPLIED, cause=event.header.message_id, actor="registry",
            audit_key=key,
        )
    ]  # fmt: skip
    return outputs + fanout.notify(hub, event, person, key)


def _annul(person: PersonState, event: RegistryEvent) -> PersonState:
    """Undo what an annulled event changed, as far as the row can know it.

    Only a death can be undone from the row alone (a death registered in error); an
    annulled move or rename is followed by the registry's corrected event.
    """
    if event.kind is EventKind.DIED:
        return person.model_copy(update={"died_on": None})
    return person


def _refused(hub: Hub, event: RegistryEvent, reason: str) -> Output:
    code, _, _detail = reason.partition(":")
    hub.metrics[f"registry_refused.{code}"] += 1
    return hub.audit.record(
        AuditStep.REFUSED, cause=event.header.message_id, actor="registry", error_code=code
    )
