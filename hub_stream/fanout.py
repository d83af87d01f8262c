"""Life-event fan-out: each registry event, translated, to every agency holding the person.

An agency learns only the kinds of event the directory entitles it to, under its own
link code. Notices are keyed by that link code, so one person's notices stay in order in
one partition of the agency's ``.in`` topic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.models import AuditStep, Header, LifeEventNotice, RegistryEvent

from .ids import derive_id

if TYPE_CHECKING:
    from .hub import Hub
    from .pipeline import Output
    from .records import PersonState

__all__ = ["notify"]


def notify(hub: Hub, event: RegistryEvent, person: PersonState, audit_key: str) -> list[Output]:
    """Notices for every entitled holder of the person, with one audit record each."""
    outputs: list[Output] = []
    id_code = bytes.fromhex(person.id_code)
    for agency in sorted(hub.holders.get(audit_key, ())):
        if not hub.directory.entitled(agency, event.kind):
            continue
        link_code = hub.links.mint(agency, id_code)
        cause = event.header.message_id
        notice = LifeEventNotice(
            header=Header.new("hub", cause, message_id=derive_id("notice", cause, agency)),
            link_code=link_code,
            event_id=event.event_id,
            kind=event.kind,
            action=event.action,
            corrects_event_id=event.corrects_event_id,
            effective_date=event.effective_date,
            body=event.body,
        )
        outputs.append(hub.send(hub.topics.agency_in(agency), link_code, notice))
        outputs.append(
            hub.audit.record(
                AuditStep.NOTIFIED, cause=derive_id("notified", cause, agency), actor="hub",
                audit_key=audit_key, provider="registry", requester=agency,
            )
        )  # fmt: skip
        hub.metrics["notices"] += 1
    return outputs
