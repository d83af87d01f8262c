"""The values of the hub's state tables (JSON in compacted ``hub.state.*`` topics).

They never hold attribute values: a person row is what the resident registry published
(the hub's copy for matching) with the few latest events that changed it, a holding says
who holds whom, a pending row says who waits for which answer until when, a key-state row
says which link-code key version of an agency is current (versions and dates, no keys).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from renkei.crypto import AgencyKeyState
from schemas.models import Basic4, EventBody, EventKind

__all__ = ["AppliedEvent", "Holding", "KeyStateRecord", "Pending", "PersonState"]

_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _json_text(text: str) -> str:
    """A JSON string as pydantic writes it: UTF-8 as is, only quote, backslash and control
    characters escaped (``json.dumps`` escapes those alike)."""
    if _ESCAPED.search(text) is None:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def _plain_text(text: str) -> str:
    return f'"{text}"'


# At most one body type fits a body (each forbids the others' fields, and no two require
# the same ones), so the first that does is the one: pydantic's default "smart" union tries
# every type, which made a person row's validation ≈ 1.7× slower on restore.
_FIRST_THAT_FITS = Field(union_mode="left_to_right")


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class AppliedEvent(_State):
    """A registry event applied to a person, kept so a correction or annulment can name it.

    ``previous`` describes the person's facts of this kind just before the event (``None``
    for a registration, and for "alive" before a death); an annulment restores it.
    ``notified`` are the agencies that were told of the event: they, and only they, are
    told of its corrections and its annulment.
    """

    event_id: str
    kind: EventKind
    body: Annotated[EventBody, _FIRST_THAT_FITS]
    previous: Annotated[EventBody | None, _FIRST_THAT_FITS] = None
    notified: tuple[str, ...] = ()


class PersonState(_State):
    """One person as the registry last described them; keyed by resident code.

    ``history`` holds the registration and the latest few events of each kind
    (:data:`hub_stream.history.HISTORY_PER_KIND`), oldest first.
    """

    id_code: str  # hex; never leaves the hub
    my_number: str
    basic4: Basic4
    died_on: date | None = None
    history: tuple[AppliedEvent, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonState:
        return cls.model_validate_json(data)


class Holding(_State):
    """Agency ``agency`` holds the person (keyed ``<audit key>|<agency>``) since ``since_ms``."""

    agency: str
    record_ref: str
    capacity: str
    since_ms: int

    @classmethod
    def from_bytes(cls, data: bytes) -> Holding:
        return cls.model_validate_json(data)


class Pending(_State):
    """A forwarded request waiting for its answer; keyed by hub request id.

    One is written per request, so it is encoded by hand (:meth:`to_bytes`): the same JSON
    bytes as ``model_dump_json`` (a unit test holds it to that), at a third of the cost.
    """

    requester: str
    request_id: str
    request_message_id: str
    requester_link_code: str
    provider: str
    scenario_id: str
    legal_basis: str
    items: tuple[str, ...]
    audit_key: str
    deadline_ms: int

    @classmethod
    def from_bytes(cls, data: bytes) -> Pending:
        return cls.model_validate_json(data)

    def to_bytes(self) -> bytes:
        texts = (self.requester, self.request_id, self.request_message_id,
                 self.requester_link_code, self.provider, self.scenario_id, self.legal_basis,
                 self.audit_key)  # fmt: skip
        # Nearly always nothing to escape: one search over all the texts, then no quoting.
        plain = _ESCAPED.search("".join(texts) + "".join(self.items)) is None
        q = _plain_text if plain else _json_text
        items = ",".join(q(item) for item in self.items)
        return (
            f'{{"requester":{q(texts[0])},"request_id":{q(texts[1])},'
            f'"request_message_id":{q(texts[2])},"requester_link_code":{q(texts[3])},'
            f'"provider":{q(texts[4])},"scenario_id":{q(texts[5])},'
            f'"legal_basis":{q(texts[6])},"items":[{items}],'
            f'"audit_key":{q(texts[7])},"deadline_ms":{int(self.deadline_ms)}}}'
        ).encode()


class KeyStateRecord(_State):
    """An agency's link-code key state as the hub applied it; keyed by agency id.

    Published to the compacted ``hub.state.keys`` topic in the transaction that sent the
    agency its link-code remaps; restored at start. Versions and dates only, never keys.
    """

    agency_id: str
    state: AgencyKeyState
    command_id: str  # the operator's rotation command that produced it
    requested_by: str
    remapped: int  # LinkCodeRemap messages sent, one per person the agency held

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyStateRecord:
        return cls.model_validate_json(data)
