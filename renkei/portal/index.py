"""The portal's memory: every person's audit records, indexed by audit key, from a replay.

The index follows ``hub.audit`` (read_committed, from the beginning, then tailing), the
operators' releases on ``hub.disclosure`` and the directory's names. Requests are served
from memory only, so a load peak never reaches Kafka. Strings that repeat across millions
of records (agency ids, scenarios, legal bases, item lists) are stored once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

from hub_stream.directory import Directory
from renkei.audit.disclosure import Release, disclosure_topic
from renkei.audit.reader import read_directory, read_topic
from renkei.audit.replay import entries, ms
from renkei.errors import AuditError, SignatureError
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import AuditRecord

from .labels import Names

__all__ = ["PortalIndex", "Row"]

log = logging.getLogger(__name__)


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


class PortalIndex:
    """audit key → rows, plus the releases and the directory's names."""

    def __init__(self) -> None:
        self._rows: dict[str, list[Row]] = {}
        self._strings: dict[Any, Any] = {}
        self._released_exchanges: set[str] = set()
        self._released_scenarios: list[Release] = []
        self.names = Names({}, {})
        self._directory = Directory()
        self.records = 0
        self.caught_up = asyncio.Event()

    def _intern(self, value: Any) -> Any:
        return self._strings.setdefault(value, value)

    def add(self, record: AuditRecord) -> None:
        """Index one record (records about no person are not shown to anyone)."""
        if record.audit_key is None:
            return
        s = self._intern
        self.add_row(
            record.audit_key,
            Row(
                ms(record.occurred_at), s(str(record.step)), s(record.actor), s(record.requester),
                s(record.provider), s(record.scenario_id), s(record.legal_basis),
                s(tuple(record.items)), s(record.error_code), record.disclosable,
                record.hub_request_id,
            ),
        )  # fmt: skip

    def add_row(self, audit_key: str, row: Row) -> None:
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

    # -- following Kafka ---------------------------------------------------------------

    async def follow(self, kafka: dict[str, Any], topics: Topics, codec: Codec) -> None:
        """Load the directory, then tail the trail and the releases until cancelled."""
        await self.refresh_names(kafka, topics, codec)
        tasks = [
            asyncio.create_task(self._follow_trail(kafka, topics, codec)),
            asyncio.create_task(self._follow_releases(kafka, topics, codec)),
            asyncio.create_task(self._refresh_names_forever(kafka, topics, codec)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def refresh_names(self, kafka: dict[str, Any], topics: Topics, codec: Codec) -> None:
        directory = await read_directory(kafka, topics.directory, codec)
        self._directory = directory
        self.names = Names(
            {a.agency_id: (a.name_ja, a.name) for a in directory.agencies.values()},
            {s.scenario_id: (s.duty_ja, s.duty) for s in directory.scenarios.values()},
        )

    async def _refresh_names_forever(
        self, kafka: dict[str, Any], topics: Topics, codec: Codec
    ) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await self.refresh_names(kafka, topics, codec)
            except Exception:  # a directory hiccup must not stop the portal
                log.exception("could not refresh the directory")

    async def _follow_trail(self, kafka: dict[str, Any], topics: Topics, codec: Codec) -> None:
        async for entry in entries(
            kafka, topics.audit, codec, follow=True, on_caught_up=self.caught_up.set
        ):
            self.add(entry.record)

    async def _follow_releases(self, kafka: dict[str, Any], topics: Topics, codec: Codec) -> None:
        topic = disclosure_topic(topics)
        while True:
            try:
                async for batch in read_topic(kafka, topic, follow=True):
                    for raw in batch:
                        if raw.value is not None:
                            self._apply_release(raw.value)
            except AuditError:
                await asyncio.sleep(5)  # no release was ever made: the topic does not exist

    def _apply_release(self, value: bytes) -> None:
        try:
            release = Release.parse(value)
            operator = self._directory.agency(release.operator)
            if operator is None:
                raise SignatureError(f"{release.operator} is not in the directory")
            release.check(operator.signing_public_key)
        except (AuditError, SignatureError, ValueError) as exc:
            log.warning("ignoring a release that does not verify: %s", exc)
            return
        self.release(release)
