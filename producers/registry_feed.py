"""The registry's feed file: persons and their life events, one per line, CSV or JSON Lines.

``renkei registry publish --file persons.csv`` reads it and publishes one signed
``RegistryEvent`` per line, in file order. Columns (CSV header row) or keys (JSONL):

============== ==================================================================
``action``     ``register`` (default when absent or empty), ``move``, ``rename``,
               ``die``, ``reissue_number``
``resident``   ``resident_code``: the registry's own id of the person (required)
``event_id``   optional; by default derived from the line's content, so publishing
               the same file again sends the same events, which the hub drops as
               duplicates
``effective``  ``effective_date`` (ISO date): required, except ``register`` (defaults
               to ``birth_date``) and ``die`` (defaults to ``date_of_death``)
register       ``my_number``, ``name``, ``name_kana``, ``birth_date``, ``sex``
               (``MALE`` / ``FEMALE`` / ``UNSPECIFIED``), ``address``
move           ``address``
rename         ``name``, ``name_kana``
die            ``date_of_death``
reissue_number ``my_number``
============== ==================================================================

Other columns are ignored, empty cells are absent. A bad line raises
:class:`~renkei.errors.ContractError` naming the file, the line and the field; nothing
is published then.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from producers.registry_publisher import RegistryPublisher
from renkei import mynumber
from renkei.errors import ContractError, InvalidMyNumberError
from schemas.models import Basic4, NumberReissued, PersonRegistered, Sex

__all__ = ["ACTIONS", "FeedEvent", "publish_feed", "read_feed"]

ACTIONS = ("register", "move", "rename", "die", "reissue_number")
_NEEDS = {
    "register": ("my_number", "name", "name_kana", "birth_date", "sex", "address"),
    "move": ("address", "effective_date"),
    "rename": ("name", "name_kana", "effective_date"),
    "die": ("date_of_death",),
    "reissue_number": ("my_number", "effective_date"),
}


@dataclass(frozen=True)
class FeedEvent:
    """One line of the feed, checked."""

    where: str  # "persons.csv:3"
    action: str
    resident_code: str
    event_id: str
    effective_date: date
    fields: dict[str, str]


def read_feed(path: Path) -> list[FeedEvent]:
    """Parse and check the whole file (``.csv``, or ``.jsonl`` / ``.ndjson``)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ContractError(f"cannot read the feed {path}: {exc.strerror}") from exc
    rows: list[tuple[int, dict[str, Any]]]
    if suffix == ".csv":
        rows = [(i + 2, row) for i, row in enumerate(csv.DictReader(text.splitlines()))]
    elif suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ContractError(f"{path.name}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise ContractError(f"{path.name}:{number}: a JSON object per line, please")
            rows.append((number, row))
    else:
        raise ContractError(f"{path}: the feed must be .csv or .jsonl, not {suffix or 'no suffix'}")
    return [_event(f"{path.name}:{number}", row) for number, row in rows]


def _event(where: str, row: dict[str, Any]) -> FeedEvent:
    fields = {str(k).strip(): str(v).strip() for k, v in row.items() if k and v not in (None, "")}
    action = fields.pop("action", "register").lower()
    if action not in ACTIONS:
        raise ContractError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
    resident = fields.pop("resident_code", "")
    if not resident:
        raise ContractError(f"{where}: resident_code is missing")
    missing = [name for name in _NEEDS[action] if name not in fields]
    if missing:
        raise ContractError(f"{where}: {action} needs {', '.join(missing)}")
    default = {"register": "birth_date", "die": "date_of_death"}.get(action)
    effective = fields.get("effective_date") or fields.get(default or "", "")
    if not effective:
        raise ContractError(f"{where}: {action} needs effective_date")
    for name in ("effective_date", "birth_date", "date_of_death"):
        if name in fields:
            _date(where, name, fields[name])
    try:  # every check the publisher would make, before anything is published
        if "my_number" in fields:
            mynumber.validate(fields["my_number"])  # the check digit, not only 12 digits
        if action == "register":
            PersonRegistered(my_number=fields["my_number"], basic4=_basic4(where, fields))
        elif action == "reissue_number":
            NumberReissued(my_number=fields["my_number"])
    except (ValidationError, InvalidMyNumberError) as exc:
        raise ContractError(f"{where}: {_first_error(exc)}") from exc
    event_id = fields.pop("event_id", "") or _derived_id(action, resident, effective, fields)
    return FeedEvent(where, action, resident, event_id, _date(where, "effective_date", effective),
                     fields)  # fmt: skip


def _date(where: str, name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ContractError(f"{where}: {name} {text!r} is not an ISO date (YYYY-MM-DD)") from exc


def _basic4(where: str, fields: dict[str, str]) -> Basic4:
    try:
        return Basic4(
            name=fields["name"], name_kana=fields["name_kana"],
            birth_date=date.fromisoformat(fields["birth_date"]),
            sex=Sex(fields["sex"].upper()), address=fields["address"],
        )  # fmt: skip
    except ValueError as exc:  # ValidationError, or a sex that is no Sex
        raise ContractError(f"{where}: {_first_error(exc)}") from exc


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    return str(exc)


def _derived_id(action: str, resident: str, effective: str, fields: dict[str, str]) -> str:
    digest = hashlib.blake2b(digest_size=16, person=b"renkei-feed-v1")
    digest.update(json.dumps([action, resident, effective, sorted(fields.items())]).encode())
    return digest.hexdigest()


async def publish_feed(publisher: RegistryPublisher, events: list[FeedEvent]) -> list[str]:
    """Publish every event (checked by :func:`read_feed`) in order; returns their ids."""
    for event in events:
        f, when, code, eid = event.fields, event.effective_date, event.resident_code, event.event_id
        if event.action == "register":
            await publisher.register(code, f["my_number"], _basic4(event.where, f), when, eid)
        elif event.action == "move":
            await publisher.move(code, f["address"], when, eid)
        elif event.action == "rename":
            await publisher.rename(code, f["name"], f["name_kana"], when, eid)
        elif event.action == "die":
            await publisher.die(code, date.fromisoformat(f["date_of_death"]), when, eid)
        else:
            await publisher.reissue_number(code, f["my_number"], when, eid)
    return [event.event_id for event in events]
