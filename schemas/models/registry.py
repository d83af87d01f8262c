"""Messages born in the resident registry: events, their per-agency notices, code remaps."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Self

from pydantic import model_validator

from schemas.models._base import Int32, ResidentCode, TimestampMs
from schemas.models._limited import Id, LinkCode
from schemas.models.enums import EventAction, EventKind
from schemas.models.records import BODY_FOR_KIND, EventBody, Message

__all__ = ["LifeEventNotice", "LinkCodeRemap", "RegistryEvent"]


def _check_life_event(
    kind: EventKind, action: EventAction, corrects_event_id: str | None, body: EventBody | None
) -> None:
    """Rules an event and its notices share.

    Consumers branch on action and kind; a body that contradicts them would be applied to
    the wrong thing, so such a message is malformed rather than merely odd.
    """
    if (action is EventAction.ANNULMENT) != (body is None):
        raise ValueError("body must be null exactly when action is ANNULMENT")
    if (action is EventAction.ORIGINAL) != (corrects_event_id is None):
        raise ValueError("corrects_event_id must be set exactly for CORRECTION and ANNULMENT")
    expected = BODY_FOR_KIND.get(kind)
    # UNKNOWN (a newer writer's kind) has no body we could check against
    if body is not None and expected is not None and type(body) is not expected:
        raise ValueError(f"a {kind} event carries {expected.__name__}")


class RegistryEvent(Message):
    """A life event from the registry, on ``registry.events`` keyed by resident code."""

    avro_name: ClassVar[str] = "jp.renkei.RegistryEvent"

    event_id: Id
    resident_code: ResidentCode
    kind: EventKind
    action: EventAction
    corrects_event_id: Id | None = None
    effective_date: date
    body: EventBody | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_life_event(self.kind, self.action, self.corrects_event_id, self.body)
        return self


class LifeEventNotice(Message):
    """A registry event translated for one entitled agency that holds the person."""

    avro_name: ClassVar[str] = "jp.renkei.LifeEventNotice"

    link_code: LinkCode
    event_id: Id
    kind: EventKind
    action: EventAction
    corrects_event_id: Id | None = None
    effective_date: date
    body: EventBody | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_life_event(self.kind, self.action, self.corrects_event_id, self.body)
        return self


class LinkCodeRemap(Message):
    """After a key rotation: the agency replaces ``old_link_code`` with ``new_link_code``."""

    avro_name: ClassVar[str] = "jp.renkei.LinkCodeRemap"

    old_link_code: LinkCode
    new_link_code: LinkCode
    key_version: Int32
    old_codes_valid_until: TimestampMs
