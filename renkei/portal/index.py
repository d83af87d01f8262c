"""The portal's memory: every person's verified audit records, indexed by audit key.

:mod:`.follow` fills it from ``hub.audit`` through a :class:`~.trail.TrailVerifier` (only
records a signed tree head or checkpoint covers get here, each with its bytes and its
place in the partition's Merkle tree, so the page can prove it), from the operators'
releases and from the directory's names. Requests are served from memory only, so a
load peak never reaches Kafka. Strings that repeat across millions of records (agency
ids, scenarios, legal bases, item lists) are stored once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any, NamedTuple

from renkei.audit.disclosure import Release
from renkei.audit.replay import ms
from schemas.models import AuditRecord

from .labels import Names
from .trail import TrailStats, TrailVerifier, Verified

__all__ = ["PortalIndex", "Row"]

_CONTACT_TIMEOUT_S = 30
"""Kafka silent this long (the follower asks every few seconds): say so."""


class Row(NamedTuple):
    """One audit record as the portal keeps it (no audit key: the row sits under it)."""

    occurred_ms: int
    step: str
    actor: str
    requester: str | None
    provider: str | None
    scenario_id: str | None
    legal_basis: str | None
    items: tuple[str, ...]
    error_code: str | None
    disclosable: bool
    hub_request_id: str | None
    partition: int = -1  # where it is in the trail; -1 for a row the caller vouches for
    position: int = -1  # chain position = leaf index in the partition's Merkle tree
    offset: int = -1  # Kafka offset
    data: bytes = b""  # the record's bytes as read: what its leaf hash is of


class PortalIndex:
    """audit key → rows, plus the releases, the directory's names and how following goes.

    :param trail: the verifier :mod:`.follow` feeds; ``None`` when the caller fills the
        index itself (tests, the benchmark) and vouches for what it adds.
    """

    def __init__(self, trail: TrailVerifier | None = None) -> None:
        self._rows: dict[str, list[Row]] = {}
        self._strings: dict[Any, Any] = {}
        self._released_exchanges: set[str] = set()
        self._released_scenarios: list[Release] = []
        self.names = Names({}, {})
        self.records = 0
        self.trail = trail
        self.caught_up = asyncio.Event()
        """Set once the replay reached the end of the trail seen when it started."""
        self.lag: int | None = None  # offsets of hub.audit not read yet
        self.last_contact: float | None = None  # time.time() Kafka last answered
        self.problem: str | None = None  # why following is not going well, if it is not
        self.releases_rejected = 0
        self.directory_rejected = 0
        self.answers: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        """``/api/history`` answers as sent, by person and :meth:`version`
        (:func:`.pages.history_answer`): a page polled between two commits costs nothing."""

        self.rows_json: dict[tuple[int, int], tuple[Names, Row, dict[str, Any]]] = {}
        """Each served record's JSON but its proof, by (partition, position)
        (:func:`.pages.record_json`)."""

    def version(self) -> tuple[int, ...]:
        """Changes whenever any answer may: a record, a release, a head, the names."""
        heads = self.trail.heads_kept if self.trail is not None else 0
        released = len(self._released_exchanges) + len(self._released_scenarios)
        return (self.records, released, heads, id(self.names))

    def _intern(self, value: Any) -> Any:
        return self._strings.setdefault(value, value)

    def add(self, record: AuditRecord) -> None:
        """Index one verified record (records about no person are not shown to anyone)."""
        self._add(record, -1, -1, -1, b"")

    def add_verified(self, verified: Verified) -> None:
        """Index a record the trail verified, with its bytes and place for its proof."""
        record, partition, position, offset, data = verified
        self._add(record, partition, position, offset, data)

    def _add(
        self, record: AuditRecord, partition: int, position: int, offset: int, data: bytes
    ) -> None:
        if record.audit_key is None:
            return
        s = self._intern
        self.add_row(
            record.audit_key,
            Row(
                ms(record.occurred_at), s(str(record.step)), s(record.actor), s(record.requester),
                s(record.provider), s(record.scenario_id), s(record.legal_basis),
                s(tuple(record.items)), s(record.error_code), record.disclosable,
                record.hub_request_id, partition, position, offset, data,
            ),
        )  # fmt: skip

    def add_row(self, audit_key: str, row: Row) -> None:
        """Index one row the caller vouches for."""
        rows = self._rows.get(audit_key)
        if rows is None:
            self._rows[audit_key] = [row]
        else:
            rows.append(row)
        self.records += 1

    @property
    def persons(self) -> int:
        return len(self._rows)

    def release(self, release: Release) -> None:
        """Apply an operator's (already verified) release."""
        if release.hub_request_id is not None:
            self._released_exchanges.add(release.hub_request_id)
        else:
            self._released_scenarios.append(release)

    def _shown(self, row: Row) -> bool:
        if row.disclosable:
            return True
        if row.hub_request_id is not None and row.hub_request_id in self._released_exchanges:
            return True
        return any(
            r.covers(row.scenario_id, row.hub_request_id, row.occurred_ms)
            for r in self._released_scenarios
        )

    def history(self, audit_key: str) -> list[Row]:
        """What this person may see, newest first. Withheld records are simply absent:
        saying that something is withheld would already disclose an investigation."""
        rows = self._rows.get(audit_key, ())
        return [r for r in reversed(rows) if self._shown(r)]

    # -- health ------------------------------------------------------------------------

    def health(self, stale_after_s: float = 300, now: float | None = None) -> dict[str, Any]:
        """What ``/healthz`` says. ``caught_up`` only when the replay is done, nothing is
        left to read, and no record has waited longer than ``stale_after_s`` for a
        checkpoint (the hub signs every minute: a longer wait means a stuck or broken
        trail); ``status`` names the first thing wrong."""
        now = time.time() if now is None else now
        stats = self.trail.stats if self.trail is not None else TrailStats()
        oldest = self.trail.oldest_waiting_ms() if self.trail is not None else None
        waited_s = None if oldest is None else max(0.0, now - oldest / 1000)
        status = "ok"
        if self.problem is not None:
            status = "trouble"
        elif self.last_contact is not None and now - self.last_contact > _CONTACT_TIMEOUT_S:
            status = "unreachable"
        elif not self.caught_up.is_set():
            status = "replaying"
        elif waited_s is not None and waited_s > stale_after_s:
            status = "stuck"
        elif self.lag:
            status = "behind"
        return {
            "status": status,
            "caught_up": status == "ok",
            "problem": self.problem,
            "records": self.records,
            "persons": self.persons,
            "lag": self.lag,
            "unverified": self.trail.waiting if self.trail is not None else 0,
            "oldest_unverified_s": None if waited_s is None else round(waited_s, 1),
            "rejected": stats.rejected,
            "undecodable": stats.undecodable,
            "bad_checkpoints": stats.bad_checkpoints,
            "gaps": stats.gaps,
            "bad_heads": stats.bad_heads,
            "witness_alarms": stats.witness_alarms,
            "releases_rejected": self.releases_rejected,
            "directory_rejected": self.directory_rejected,
            "last_contact_s": None
            if self.last_contact is None
            else round(max(0.0, now - self.last_contact), 1),
        }
