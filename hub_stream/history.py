"""A person's row through originals, corrections and annulments of registry events.

Each applied event is kept in the row (:class:`~.records.AppliedEvent`) with the facts it
replaced (``previous``) and the agencies told of it. That is enough to undo or amend any
event still in the row, in any order::

    correct X  X.body := new;  if a later event Y of X's kind exists: Y.previous := new
                               else the row's facts of that kind := new
    annul X    if a later event Y of X's kind exists: Y.previous := X.previous
                               else the row's facts of that kind := X.previous;  drop X

So an annulled move restores the address before it, an annulled death clears the date of
death, and annulling or correcting an event that a later one already superseded leaves
the row's current facts alone. The registration and the latest :data:`HISTORY_PER_KIND`
events of each kind are kept; a correction or annulment naming an older (or unknown)
event is refused (:class:`HistoryError`): the row cannot place it. Pure functions, no I/O.
"""

from __future__ import annotations

from schemas.models import (
    EventAction,
    EventBody,
    EventKind,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    RegistryEvent,
)

from .records import AppliedEvent, PersonState

__all__ = [
    "HISTORY_PER_KIND",
    "HistoryError",
    "annul",
    "apply_original",
    "correct",
    "find",
    "register",
]

HISTORY_PER_KIND = 3
"""Events of each kind kept per person (besides the registration). Each costs ~250 bytes
of the row, which the hub rewrites to ``hub.state.persons`` on every change."""

_FIELD_KINDS = (EventKind.MOVED, EventKind.RENAMED, EventKind.NUMBER_REISSUED)
"""Kinds whose facts a registration also sets (a registration says nothing of death)."""


class HistoryError(ValueError):
    """A registry event that the person's row cannot take; the message says why."""


def register(id_code: str, event: RegistryEvent) -> PersonState:
    """A new person from their REGISTERED event."""
    body = event.body
    if not isinstance(body, PersonRegistered):
        raise HistoryError("a REGISTERED event needs a PersonRegistered body")
    entry = AppliedEvent(event_id=event.event_id, kind=EventKind.REGISTERED, body=body)
    return PersonState(
        id_code=id_code, my_number=body.my_number, basic4=body.basic4, history=(entry,)
    )


def find(person: PersonState, event_id: str) -> AppliedEvent | None:
    """The applied event ``event_id`` if the row still holds it."""
    for entry in person.history:
        if entry.event_id == event_id:
            return entry
    return None


def apply_original(
    person: PersonState, event: RegistryEvent, notified: tuple[str, ...]
) -> PersonState:
    """Apply a new (ORIGINAL) event of any kind but REGISTERED; remember who was told."""
    body = event.body
    if body is None or event.kind not in (*_FIELD_KINDS, EventKind.DIED):
        raise HistoryError(f"a {event.kind} event cannot be applied to a registered person")
    entry = AppliedEvent(
        event_id=event.event_id,
        kind=event.kind,
        body=body,
        previous=_current(person, event.kind),
        notified=notified,
    )
    history = [*person.history, entry]
    same_kind = [e for e in history if e.kind is event.kind]
    if len(same_kind) > HISTORY_PER_KIND:
        # The next event of the kind carries its own ``previous``: nothing else to fix.
        history.remove(same_kind[0])
    return _set(person, event.kind, body).model_copy(update={"history": tuple(history)})


def correct(person: PersonState, event: RegistryEvent) -> tuple[PersonState, AppliedEvent]:
    """Apply a CORRECTION; return the new row and the corrected event as it was."""
    original, index = _target(person, event)
    body = event.body
    if body is None:
        raise HistoryError("a correction carries the corrected body")
    history = list(person.history)
    history[index] = original.model_copy(update={"body": body})
    if original.kind is EventKind.REGISTERED:
        assert isinstance(body, PersonRegistered)  # the codec checks body against kind
        assert isinstance(original.body, PersonRegistered)
        person = _correct_registration(person, history, original.body, body)
    else:
        person = _pass_on(person, history, index, original.kind, body)
    return person.model_copy(update={"history": tuple(history)}), original


def annul(person: PersonState, event: RegistryEvent) -> tuple[PersonState, AppliedEvent]:
    """Apply an ANNULMENT; return the new row and the annulled event."""
    original, index = _target(person, event)
    if original.kind is EventKind.REGISTERED:
        raise HistoryError("a registration cannot be annulled through the hub")
    history = list(person.history)
    person = _pass_on(person, history, index, original.kind, original.previous)
    del history[index]
    return person.model_copy(update={"history": tuple(history)}), original


# -- internals -----------------------------------------------------------------------------


def _target(person: PersonState, event: RegistryEvent) -> tuple[AppliedEvent, int]:
    assert event.action is not EventAction.ORIGINAL
    for index, entry in enumerate(person.history):
        if entry.event_id == event.corrects_event_id:
            if entry.kind is not event.kind:
                raise HistoryError(
                    f"event {event.corrects_event_id} is {entry.kind}, not {event.kind}"
                )
            return entry, index
    raise HistoryError(
        f"event {event.corrects_event_id} is unknown, or older than the "
        f"{HISTORY_PER_KIND} latest of its kind the hub keeps"
    )


def _pass_on(
    person: PersonState,
    history: list[AppliedEvent],
    index: int,
    kind: EventKind,
    body: EventBody | None,
) -> PersonState:
    """``body`` now stands where history[index] stood: in the next event of the kind, or
    (if there is none) in the row itself."""
    for later in range(index + 1, len(history)):
        if history[later].kind is kind:
            history[later] = history[later].model_copy(update={"previous": body})
            return person
    return _set(person, kind, body)


def _correct_registration(
    person: PersonState,
    history: list[AppliedEvent],
    was: PersonRegistered,
    now: PersonRegistered,
) -> PersonState:
    basic4 = person.basic4.model_copy(
        update={"birth_date": now.basic4.birth_date, "sex": now.basic4.sex}
    )
    person = person.model_copy(update={"basic4": basic4})
    for kind in _FIELD_KINDS:
        # Only where the registered value still stands: as the row's value, or as what
        # the first kept event of the kind replaced. Otherwise events older than the kept
        # history replaced it, and the registration no longer decides it.
        later = next((i for i, e in enumerate(history) if e.kind is kind), None)
        if later is not None:
            if history[later].previous == _project(was, kind):
                history[later] = history[later].model_copy(update={"previous": _project(now, kind)})
        elif _current(person, kind) == _project(was, kind):
            person = _set(person, kind, _project(now, kind))
    return person


def _project(registered: PersonRegistered, kind: EventKind) -> EventBody:
    """What a registration says about the facts of ``kind``."""
    b4 = registered.basic4
    if kind is EventKind.MOVED:
        return PersonMoved(address=b4.address)
    if kind is EventKind.RENAMED:
        return PersonRenamed(name=b4.name, name_kana=b4.name_kana)
    return NumberReissued(my_number=registered.my_number)


def _current(person: PersonState, kind: EventKind) -> EventBody | None:
    """The row's facts of ``kind``, as the body of an event that would set them."""
    if kind is EventKind.MOVED:
        return PersonMoved(address=person.basic4.address)
    if kind is EventKind.RENAMED:
        return PersonRenamed(name=person.basic4.name, name_kana=person.basic4.name_kana)
    if kind is EventKind.NUMBER_REISSUED:
        return NumberReissued(my_number=person.my_number)
    if kind is EventKind.DIED:
        return None if person.died_on is None else PersonDied(date_of_death=person.died_on)
    raise HistoryError(f"no facts of kind {kind}")


def _set(person: PersonState, kind: EventKind, body: EventBody | None) -> PersonState:
    """The row with its facts of ``kind`` replaced by ``body``."""
    if kind is EventKind.DIED:
        if body is not None and not isinstance(body, PersonDied):
            raise HistoryError(f"a DIED event carries PersonDied, not {type(body).__name__}")
        return person.model_copy(update={"died_on": body.date_of_death if body else None})
    if isinstance(body, PersonMoved) and kind is EventKind.MOVED:
        basic4 = person.basic4.model_copy(update={"address": body.address})
        return person.model_copy(update={"basic4": basic4})
    if isinstance(body, PersonRenamed) and kind is EventKind.RENAMED:
        update = {"name": body.name, "name_kana": body.name_kana}
        return person.model_copy(update={"basic4": person.basic4.model_copy(update=update)})
    if isinstance(body, NumberReissued) and kind is EventKind.NUMBER_REISSUED:
        return person.model_copy(update={"my_number": body.my_number})
    raise HistoryError(f"a {kind} event cannot carry {type(body).__name__}")
