"""Following Kafka for the portal: the trail (verified), the releases and the names.

Each loop retries on any failure — a missing topic, an unreachable broker, garbage — and
says so on the index (``/healthz``) instead of stopping; the trail's reader resumes where
it was, so a retry never indexes a record twice. Every signature is checked against the
pinned :class:`~.settings.PortalTrust`: nothing read from Kafka can tell the portal which
keys to trust.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import TopicPartition

from renkei.audit.disclosure import Release, disclosure_topic
from renkei.audit.reader import read_topic
from renkei.envelope import verify_bytes
from renkei.errors import AuditError, ContractError, SignatureError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import AgencyEntry, ScenarioEntry

from .index import PortalIndex
from .labels import Names
from .settings import PortalTrust

__all__ = ["follow", "follow_releases", "follow_trail", "refresh_names"]

log = logging.getLogger(__name__)

_CHECK_EVERY_S = 2.0  # how often the end of the trail is asked for (lag, liveness)
_NAMES_EVERY_S = 60.0
_BATCH = 2_000  # records per fetch: about 0.1 s of verifying, then requests get a turn


async def follow(
    index: PortalIndex,
    kafka: dict[str, Any],
    topics: Topics,
    codec: Codec,
    trust: PortalTrust,
    *,
    retry_s: float = 5.0,
) -> None:
    """Tail the trail, the releases and the directory into ``index`` until cancelled."""
    await _names_once(index, kafka, topics.directory, codec, trust)  # names before records
    tasks = [
        asyncio.create_task(follow_trail(index, kafka, topics.audit, retry_s=retry_s)),
        asyncio.create_task(
            follow_releases(index, kafka, disclosure_topic(topics), trust, retry_s=retry_s)
        ),
        asyncio.create_task(_names_forever(index, kafka, topics.directory, codec, trust)),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def follow_trail(
    index: PortalIndex, kafka: dict[str, Any], topic: str, *, retry_s: float = 5.0
) -> None:
    """Read ``topic`` from its beginning through ``index.trail`` and index what verifies."""
    if index.trail is None:
        raise AuditError("following the trail needs an index with a TrailVerifier")
    positions: dict[int, int] = {}  # next offset per partition: where a retry resumes
    while True:
        try:
            await _read_trail(index, kafka, topic, positions)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever went wrong, keep trying and say so
            index.problem = f"reading {topic}: {type(exc).__name__}: {exc}"
            log.warning("portal: %s; retrying in %.0f s", index.problem, retry_s)
            await asyncio.sleep(retry_s)


async def _read_trail(
    index: PortalIndex, kafka: dict[str, Any], topic: str, positions: dict[int, int]
) -> None:
    trail = index.trail
    assert trail is not None
    consumer = committed_reader(kafka, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        found = await topic_partitions(consumer, topic)
        if not found:
            raise AuditError(f"topic {topic} does not exist (yet)")
        tps = [TopicPartition(topic, p) for p in found]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, positions.get(tp.partition, begin[tp]))
        end = await consumer.end_offsets(tps)  # what "caught up" means for the replay
        latest = end
        checked = asyncio.get_running_loop().time()
        index.last_contact, index.problem = time.time(), None
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=_BATCH)
            for tp, records in batch.items():
                for r in records:
                    for verified in trail.add_verified(
                        tp.partition, r.offset, r.timestamp, r.value
                    ):
                        index.add_verified(verified)
                if records:  # at once: a retry after a failure below must not re-read them
                    positions[tp.partition] = records[-1].offset + 1
                await asyncio.sleep(0)  # let requests in between batches of the replay
            now = asyncio.get_running_loop().time()
            if now - checked >= _CHECK_EVERY_S:
                latest = await asyncio.wait_for(consumer.end_offsets(tps), 15)
                index.last_contact, checked = time.time(), now
            # Transaction markers take offsets too: positions, not record counts.
            at = {tp: await consumer.position(tp) for tp in tps}
            positions.update({tp.partition: at[tp] for tp in tps})
            index.lag = sum(max(0, latest[tp] - at[tp]) for tp in tps)
            if not index.caught_up.is_set() and all(at[tp] >= end[tp] for tp in tps):
                trail.check_replayed()  # a witness state from an earlier run: no rollback
                index.caught_up.set()
                log.info("portal: replayed %s, %d records indexed", topic, index.records)
    finally:
        await consumer.stop()


async def follow_releases(
    index: PortalIndex,
    kafka: dict[str, Any],
    topic: str,
    trust: PortalTrust,
    *,
    retry_s: float = 5.0,
) -> None:
    """Apply every release on ``topic`` that the pinned operators' key signed."""
    seen: set[str] = set()  # a retry reads the topic again from its beginning
    while True:
        try:
            async for batch in read_topic(kafka, topic, follow=True):
                for raw in batch:
                    if raw.value is not None:
                        _apply_release(index, trust, raw.value, seen)
        except asyncio.CancelledError:
            raise
        except AuditError:
            pass  # no release was ever made: the topic does not exist yet
        except Exception:
            log.exception("portal: reading %s failed; retrying", topic)
        await asyncio.sleep(retry_s)


def _apply_release(index: PortalIndex, trust: PortalTrust, value: bytes, seen: set[str]) -> None:
    try:
        release = Release.parse(value)
        release.check(trust.operator_key)
    except (AuditError, SignatureError, ValueError) as exc:
        index.releases_rejected += 1
        log.warning("portal: ignoring a release that does not verify: %s", exc)
        return
    if release.release_id not in seen:
        seen.add(release.release_id)
        index.release(release)


async def refresh_names(
    index: PortalIndex, kafka: dict[str, Any], topic: str, codec: Codec, trust: PortalTrust
) -> None:
    """Agency names and duties from the directory, every entry checked against the pinned
    operators' key: a forged entry could put words in an agency's name."""
    agencies: dict[str, tuple[str, str]] = {}
    duties: dict[str, tuple[str, str]] = {}
    rejected = 0
    async for batch in read_topic(kafka, topic):
        for raw in batch:
            if raw.value is None:
                continue
            try:
                entry = codec.decode(raw.value)
                if not isinstance(entry, AgencyEntry | ScenarioEntry):
                    raise ContractError(f"a {type(entry).__name__}")
                verify_bytes(raw.value, trust.operator_key, codec)  # the bytes as published
            except (ContractError, SignatureError) as exc:
                rejected += 1
                log.warning("portal: directory %d:%d ignored: %s", raw.partition, raw.offset, exc)
                continue
            if isinstance(entry, AgencyEntry):
                agencies[entry.agency_id] = (entry.name_ja, entry.name)
            else:
                duties[entry.scenario_id] = (entry.duty_ja, entry.duty)
    index.names = Names(agencies, duties)
    index.directory_rejected = rejected


async def _names_once(
    index: PortalIndex, kafka: dict[str, Any], topic: str, codec: Codec, trust: PortalTrust
) -> None:
    try:
        await refresh_names(index, kafka, topic, codec, trust)
    except asyncio.CancelledError:
        raise
    except AuditError as exc:  # no directory yet: names show as agency ids until there is
        log.warning("portal: no directory names: %s", exc)
    except Exception:  # a directory hiccup must not stop the portal
        log.exception("portal: could not read the directory")


async def _names_forever(
    index: PortalIndex, kafka: dict[str, Any], topic: str, codec: Codec, trust: PortalTrust
) -> None:
    while True:
        await asyncio.sleep(_NAMES_EVERY_S)
        await _names_once(index, kafka, topic, codec, trust)
