"""A person row's history keeps each event's body type through its JSON.

``AppliedEvent`` validates its bodies with the first union member that fits (faster on
restore than pydantic's default, which tries them all); that is only right while exactly
one member fits any body, which these tests hold every body type to.
"""

from __future__ import annotations

import typing
from datetime import date

import pytest
from pydantic import BaseModel, ValidationError

from hub_stream.records import AppliedEvent
from schemas.models import (
    BODY_FOR_KIND,
    Basic4,
    EventBody,
    EventKind,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
)

B4 = Basic4(name="山田 太郎", name_kana="ヤマダ タロウ", birth_date=date(1980, 1, 2),
            address="東京都千代田区1-2-3")  # fmt: skip
BODIES: dict[EventKind, EventBody] = {
    EventKind.REGISTERED: PersonRegistered(my_number="100000000072", basic4=B4),
    EventKind.MOVED: PersonMoved(address="大阪府豊中市本町1-2-3"),
    EventKind.RENAMED: PersonRenamed(name="鈴木 花子", name_kana="スズキ ハナコ"),
    EventKind.DIED: PersonDied(date_of_death=date(2020, 3, 4)),
    EventKind.NUMBER_REISSUED: NumberReissued(my_number="100000000072"),
}
MEMBERS: tuple[type[BaseModel], ...] = typing.get_args(EventBody)


def test_every_body_type_has_a_sample() -> None:
    assert set(MEMBERS) == set(BODY_FOR_KIND.values()) == {type(b) for b in BODIES.values()}


@pytest.mark.parametrize("kind", list(BODIES), ids=str)
def test_exactly_one_body_type_fits_each_body(kind: EventKind) -> None:
    data = BODIES[kind].model_dump_json()
    fits = []
    for member in MEMBERS:
        try:
            member.model_validate_json(data)
        except ValidationError:
            continue
        fits.append(member)
    assert fits == [type(BODIES[kind])]


@pytest.mark.parametrize("kind", list(BODIES), ids=str)
def test_a_history_entry_reads_back_with_its_body_types(kind: EventKind) -> None:
    previous = BODIES[EventKind.NUMBER_REISSUED if kind is EventKind.REGISTERED else kind]
    entry = AppliedEvent(event_id="e1", kind=kind, body=BODIES[kind], previous=previous)
    back = AppliedEvent.model_validate_json(entry.to_bytes())
    assert back == entry
    assert type(back.body) is type(BODIES[kind])
    assert type(back.previous) is type(previous)
