"""Projections rebuilt from the audit trail alone: fold :class:`~.replay.Entry` values in order.

A person's records all share one partition (the hub partitions by audit key), so folding
each partition in offset order sees every person's steps in the order they happened,
whatever order the partitions are read in.

=================  ======================================================================
projection         what it is
=================  ======================================================================
``Holdings``       the reference directory: who holds whom (ENROLLED − DEENROLLED)
``PendingView``    exchanges forwarded and not yet answered or timed out
``PersonsSeen``    audit keys of the persons the registry has told the hub about
``ChainHeads``     each partition's last record hash and record count
``History``        per-person history (what the portal shows, before disclosure rules)
``AgencyStats``    per-agency counts: asked, was asked, refused, notified, enrolled
=================  ======================================================================
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from renkei.auditchain import chain_hash
from schemas.models import AuditStep

from .replay import Entry

__all__ = [
    "AgencyStats",
    "ChainHeads",
    "History",
    "Holdings",
    "PendingExchange",
    "PendingView",
    "PersonsSeen",
    "Projections",
]


class Holdings:
    """``<audit key>|<agency>`` for every holding, as the hub's holdings table keys them."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def apply(self, entry: Entry) -> None:
        r = entry.record
        if r.audit_key is None:
            return
        if r.step is AuditStep.ENROLLED:
            self.keys.add(f"{r.audit_key}|{r.actor}")
        elif r.step is AuditStep.DEENROLLED:
            self.keys.discard(f"{r.audit_key}|{r.actor}")


@dataclass(frozen=True, slots=True)
class PendingExchange:
    """What the trail knows of a forwarded request still waiting for its answer."""

    requester: str
    provider: str
    scenario_id: str
    legal_basis: str
    items: tuple[str, ...]
    audit_key: str
    request_id: str


class PendingView:
    """hub request id → :class:`PendingExchange`, as the hub's pending table."""

    def __init__(self) -> None:
        self.pending: dict[str, PendingExchange] = {}

    def apply(self, entry: Entry) -> None:
        r = entry.record
        if r.hub_request_id is None:
            return
        if r.step is AuditStep.FORWARDED:
            self.pending[r.hub_request_id] = PendingExchange(
                requester=r.requester or r.actor,
                provider=r.provider or "",
                scenario_id=r.scenario_id or "",
                legal_basis=r.legal_basis or "",
                items=tuple(r.items),
                audit_key=r.audit_key or "",
                request_id=r.request_id or "",
            )
        elif r.step in (AuditStep.ANSWERED, AuditStep.TIMED_OUT):
            self.pending.pop(r.hub_request_id, None)


class PersonsSeen:
    """Audit keys of every person a registry event was applied to."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def apply(self, entry: Entry) -> None:
        r = entry.record
        if r.step is AuditStep.REGISTRY_APPLIED and r.audit_key is not None:
            self.keys.add(r.audit_key)


class ChainHeads:
    """partition → (hash of its last record, records in it)."""

    def __init__(self) -> None:
        self.heads: dict[int, tuple[bytes, int]] = {}

    def apply(self, entry: Entry) -> None:
        _, count = self.heads.get(entry.partition, (b"", 0))
        self.heads[entry.partition] = (chain_hash(entry.value), count + 1)


class History:
    """audit key → that person's entries, in order."""

    def __init__(self) -> None:
        self.by_person: dict[str, list[Entry]] = defaultdict(list)

    def apply(self, entry: Entry) -> None:
        if entry.record.audit_key is not None:
            self.by_person[entry.record.audit_key].append(entry)


@dataclass
class AgencyStats:
    """Per agency: steps it caused, requests it made and answered, refusals it got."""

    caused: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    asked: Counter[str] = field(default_factory=Counter)  # requests forwarded for it
    was_asked: Counter[str] = field(default_factory=Counter)  # requests forwarded to it
    answered: Counter[str] = field(default_factory=Counter)  # answers it gave
    refused: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    notified: Counter[str] = field(default_factory=Counter)  # life-event notices it got

    def apply(self, entry: Entry) -> None:
        r = entry.record
        step = str(r.step)
        self.caused[r.actor][step] += 1
        if r.step is AuditStep.FORWARDED:
            self.asked[r.requester or r.actor] += 1
            if r.provider:
                self.was_asked[r.provider] += 1
        elif r.step is AuditStep.ANSWERED and r.provider:
            self.answered[r.provider] += 1
        elif r.step is AuditStep.REFUSED:
            self.refused[r.actor][r.error_code or "UNKNOWN"] += 1
        elif r.step is AuditStep.NOTIFIED and r.requester:
            self.notified[r.requester] += 1

    def table(self) -> list[dict[str, object]]:
        """One row per agency, for printing."""
        agencies = sorted(
            set(self.caused) | set(self.asked) | set(self.was_asked) | set(self.notified)
        )
        return [
            {
                "agency": a,
                "records": sum(self.caused.get(a, Counter()).values()),
                "asked": self.asked[a],
                "was_asked": self.was_asked[a],
                "answered": self.answered[a],
                "refused": sum(self.refused.get(a, Counter()).values()),
                "notified": self.notified[a],
                "enrolled": self.caused.get(a, Counter())["ENROLLED"],
            }
            for a in agencies
        ]


class Projections:
    """All the projections above, fed by one pass over the trail."""

    def __init__(self, history: bool = False) -> None:
        self.holdings = Holdings()
        self.pending = PendingView()
        self.persons = PersonsSeen()
        self.heads = ChainHeads()
        self.stats = AgencyStats()
        self.history = History() if history else None

    def apply(self, entry: Entry) -> None:
        self.holdings.apply(entry)
        self.pending.apply(entry)
        self.persons.apply(entry)
        self.heads.apply(entry)
        self.stats.apply(entry)
        if self.history is not None:
            self.history.apply(entry)
