"""The agency directory and scenario table, as a JSON file operators edit and review.

Which agency may ask which other agency for which items, for which duty, is fixed in law
(番号法第19条第8号 and its 主務省令, formerly 別表第二). The hub enforces that table; this
module reads it from a file, checks that it is consistent and hands it over as frozen
models. Operators publish it to ``hub.directory``; the packaged sample
(``renkei/operator/data/directory.json``) seeds demos and tests.

A file is refused, with every problem listed, when: an id is malformed or repeated, a
JSON object repeats a key, a scenario names an agency that is not in the file, asks an
agency for an item it does not provide, or has an agency ask itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from renkei.errors import ConfigurationError

__all__ = [
    "LIFE_EVENTS",
    "Agency",
    "DirectoryFile",
    "LifeEvent",
    "Scenario",
    "load_directory_file",
    "parse_directory_file",
]

LifeEvent = Literal["REGISTERED", "MOVED", "RENAMED", "DIED", "NUMBER_REISSUED"]
"""Life events an agency can be entitled to. A correction or annulment of an event goes to
whoever was entitled to the event it corrects, so it needs no entitlement of its own."""

LIFE_EVENTS: Final[tuple[LifeEvent, ...]] = (
    "REGISTERED",
    "MOVED",
    "RENAMED",
    "DIED",
    "NUMBER_REISSUED",
)

# Agency ids become topic names (agency.<id>.in): the same rule as renkei.topics, which
# refuses dots so that the id can be read back out of the topic name.
AgencyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
ItemName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$", max_length=100)
]
ScenarioId = Annotated[str, StringConstraints(pattern=r"^S[0-9]{3,}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_PACKAGED: Final = "data/directory.json"


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Agency(_Model):
    """An information-holding agency (情報保有機関) connected to the hub."""

    agency_id: AgencyId
    """Lower-case id used in topic names and link codes (``city-shinagawa``)."""
    name: Text
    """English name."""
    name_ja: Text
    """Japanese name, as shown to citizens in the portal."""
    entitled_events: tuple[LifeEvent, ...]
    """Life events the agency is notified of for the persons it holds."""
    items: Annotated[
        Mapping[ItemName, Text],
        AfterValidator(_frozen_mapping),
        PlainSerializer(dict, return_type=dict[str, str]),
    ]
    """Attribute items the agency can provide, each with a one-line description."""

    @model_validator(mode="after")
    def _events_unique(self) -> Self:
        if len(set(self.entitled_events)) != len(self.entitled_events):
            raise ValueError("entitled_events lists an event twice")
        return self


class Scenario(_Model):
    """One row of the scenario table: requester may ask provider for items, for a duty."""

    scenario_id: ScenarioId
    """``S`` and at least three digits (``S001``)."""
    legal_basis: Text
    """The provision that allows the exchange (番号法第19条第8号 主務省令第2条の表 第N項)."""
    duty: Text
    """The duty (事務) in English."""
    duty_ja: Text
    """The duty (事務) as the law names it."""
    requester: AgencyId
    """The agency that asks (情報照会者)."""
    provider: AgencyId
    """The agency that answers (情報提供者)."""
    items: Annotated[tuple[ItemName, ...], Field(min_length=1)]
    """Items the requester may ask for: a subset of the provider's items."""

    @model_validator(mode="after")
    def _items_unique(self) -> Self:
        if len(set(self.items)) != len(self.items):
            raise ValueError("items lists an item twice")
        return self


class DirectoryFile(_Model):
    """A consistent directory: agencies and the scenarios between them."""

    format_version: Literal[1]
    """Version of this file format."""
    description: str = ""
    """Free text for reviewers: provenance, caveats."""
    agencies: tuple[Agency, ...]
    scenarios: tuple[Scenario, ...]

    _agencies: dict[str, Agency] = PrivateAttr(default_factory=dict)
    _scenarios: dict[str, Scenario] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        agencies: dict[str, Agency] = {}
        for agency in self.agencies:
            if agency.agency_id in agencies:
                problems.append(f"agency {agency.agency_id!r} is defined twice")
            else:
                agencies[agency.agency_id] = agency
        scenarios: dict[str, Scenario] = {}
        for s in self.scenarios:
            where = f"scenario {s.scenario_id}"
            if s.scenario_id in scenarios:
                problems.append(f"{where} is defined twice")
            scenarios.setdefault(s.scenario_id, s)
            for role, agency_id in (("requester", s.requester), ("provider", s.provider)):
                if agency_id not in agencies:
                    problems.append(f"{where}: {role} {agency_id!r} is not an agency in this file")
            if s.requester == s.provider:
                problems.append(f"{where}: an agency cannot ask itself through the hub")
            provider = agencies.get(s.provider)
            if provider is not None:
                problems.extend(
                    f"{where}: {s.provider!r} does not provide item {item!r}"
                    for item in s.items
                    if item not in provider.items
                )
        if problems:
            raise ValueError("\n".join(problems))
        self._agencies = agencies
        self._scenarios = scenarios
        return self

    def agency(self, agency_id: str) -> Agency:
        """Return the agency with this id.

        :raises KeyError: no such agency.
        """
        return self._agencies[agency_id]

    def scenario(self, scenario_id: str) -> Scenario:
        """Return the scenario with this id.

        :raises KeyError: no such scenario.
        """
        return self._scenarios[scenario_id]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys without a word; in a table of legal
    # permissions a silently dropped line is a defect, so refuse the file instead.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def parse_directory_file(text: str | bytes, *, source: str = "<string>") -> DirectoryFile:
    """Parse and check a directory from JSON text.

    :param source: where the text came from, for error messages.
    :raises ConfigurationError: the text is not JSON, or not a consistent directory.
    """
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise ConfigurationError(f"directory {source}: not valid JSON: {exc}") from exc
    try:
        return DirectoryFile.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(part) for part in error['loc']) or '(file)'}: {problem}"
            for error in exc.errors()
            for problem in error["msg"].removeprefix("Value error, ").splitlines()
        ]
        raise ConfigurationError(
            f"directory {source} has {len(lines)} problem(s):\n" + "\n".join(lines)
        ) from exc


def load_directory_file(path: str | os.PathLike[str] | None = None) -> DirectoryFile:
    """Read and check a directory file; without ``path``, the packaged sample.

    :raises ConfigurationError: the file cannot be read, is not JSON, or is inconsistent.
    """
    if path is None:
        resource = resources.files("renkei.operator").joinpath(_PACKAGED)
        source = f"(packaged) renkei/operator/{_PACKAGED}"
        try:
            text = resource.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {source}: {exc}") from exc
    else:
        source = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read directory file {source}: {exc}") from exc
    return parse_directory_file(text, source=source)
