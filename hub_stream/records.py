"""The values of the hub's state tables (JSON in compacted ``hub.state.*`` topics).

They never hold attribute values: a person row is what the resident registry published
(the hub's copy for matching), a holding says who holds whom, a pending row says who
waits for which answer until when.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from schemas.models import Basic4

__all__ = ["Holding", "Pending", "PersonState"]


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class PersonState(_State):
    """One person as the registry last described them; keyed by resident code."""

    id_code: str  # hex; never leaves the hub
    my_number: str
    basic4: Basic4
    died_on: date | None = None

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
    """A forwarded request waiting for its answer; keyed by hub request id."""

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
