"""The directory the hub obeys: agencies with their public keys, and the scenario table.

Operators publish it to the compacted ``hub.directory`` topic (``renkei directory
publish``, :mod:`renkei.operator.publish`); the hub reads it from Kafka, so adding an
agency or changing the law's table is an event the hub applies between two batches, with no restart.
"""

from __future__ import annotations

from schemas.models import AgencyEntry, EventKind, ScenarioEntry

__all__ = ["Directory", "DirectoryEntry", "entry_key"]

DirectoryEntry = AgencyEntry | ScenarioEntry


def entry_key(entry: DirectoryEntry) -> bytes:
    """The compaction key: the newest entry per agency and per scenario is kept."""
    if isinstance(entry, AgencyEntry):
        return f"agency/{entry.agency_id}".encode()
    return f"scenario/{entry.scenario_id}".encode()


class Directory:
    """The current directory, applied entry by entry as the hub reads ``hub.directory``."""

    def __init__(self) -> None:
        self.agencies: dict[str, AgencyEntry] = {}
        self.scenarios: dict[str, ScenarioEntry] = {}

    def apply(self, entry: DirectoryEntry) -> None:
        if isinstance(entry, AgencyEntry):
            self.agencies[entry.agency_id] = entry
        else:
            self.scenarios[entry.scenario_id] = entry

    def agency(self, agency_id: str) -> AgencyEntry | None:
        """The agency if it is known and active."""
        entry = self.agencies.get(agency_id)
        return entry if entry is not None and entry.active else None

    def scenario(self, scenario_id: str) -> ScenarioEntry | None:
        """The scenario if it is known and active."""
        entry = self.scenarios.get(scenario_id)
        return entry if entry is not None and entry.active else None

    def entitled(self, agency_id: str, kind: EventKind) -> bool:
        """May ``agency_id`` learn of life events of this kind?"""
        entry = self.agency(agency_id)
        return entry is not None and kind in entry.entitled_events
