"""Applying ``hub.directory`` to a worker's :class:`~.directory.Directory`, entry by entry.

Every worker reads the whole directory twice over: to the end while it restores
(:mod:`.state`, before it processes anything), then as it changes (the faust agent of
:mod:`.app`). Both go through :class:`DirectoryFeed`, which applies an entry only if the
pinned operators' key signed it (:func:`.trust.admit_entry`) and otherwise counts it,
logs where it is (never what it says) and carries on: nothing written to the directory
can stop a worker from starting or from following it.

The refusals themselves — dead letter, audit record, ``HubError``-free since no agency
sent them — are written once per record by the transactional loop, which reads the
directory too (:func:`.refusals.directory_refused`); the feed only decides what the worker
obeys.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from renkei.crypto.bundles import HUB_ID
from schemas.codec import Codec
from schemas.models import AgencyEntry

from .directory import Directory
from .trust import OPERATOR_ID, REGISTRY_ID, PinnedRoots, Untrusted, admit_entry

__all__ = ["DirectoryFeed"]

log = logging.getLogger(__name__)


class DirectoryFeed:
    """Applies the signed entries of ``hub.directory`` and ignores the rest.

    :param topic: ``hub.directory``.
    :param directory: returns the directory to apply entries to (the hub's current one).
    :param codec: decodes entries.
    :param roots: the pinned keys entries must verify with.
    :param metrics: counts ``directory.applied`` and ``directory_ignored.<code>``.
    :param hub_public_key: this hub's verification key, to warn when the directory
        publishes another one (agencies would then refuse everything the hub sends).
    """

    def __init__(
        self,
        topic: str,
        directory: Callable[[], Directory],
        codec: Codec,
        roots: PinnedRoots,
        metrics: Counter[str],
        hub_public_key: bytes,
    ) -> None:
        self.topic = topic
        self._directory = directory
        self._codec = codec
        self._roots = roots
        self._metrics = metrics
        self._hub_public_key = hub_public_key
        self.ignored = 0
        """Records not applied since the worker started (restore included)."""

    def load(self, key: bytes, value: bytes | None) -> None:
        """One record read while restoring (the restore's table interface)."""
        self.apply(key, value)

    def apply(self, key: bytes | None, value: bytes | None, where: str = "") -> bool:
        """Apply one record if it is a signed entry; return whether it was applied.

        :param where: ``partition:offset`` of the record, for the log line.
        """
        if value is None:
            # A tombstone cannot be signed, so it cannot withdraw anything: operators
            # retire an agency or a scenario with a signed entry, active = false.
            return False
        try:
            entry = admit_entry(self._codec, self._roots, key, value)
        except Untrusted as refused:
            self.ignored += 1
            self._metrics[f"directory_ignored.{refused.code}"] += 1
            log.warning("hub.directory %s ignored: %s", where or "record", refused)
            return False
        except Exception as exc:  # a defect of ours must not stop a start either
            self.ignored += 1
            self._metrics["directory_ignored.INTERNAL"] += 1
            log.error("hub.directory %s ignored: unexpected %s", where, type(exc).__name__)
            return False
        if isinstance(entry, AgencyEntry):
            self._check_roots(entry)
        self._directory().apply(entry)
        self._metrics["directory.applied"] += 1
        return True

    def _check_roots(self, entry: AgencyEntry) -> None:
        pinned = {
            OPERATOR_ID: self._roots.operator,
            REGISTRY_ID: self._roots.registry,
            HUB_ID: self._hub_public_key,
        }.get(entry.agency_id)
        if pinned is not None and entry.signing_public_key != pinned:
            # Informative only: the hub trusts its configuration, never this entry.
            log.warning(
                "hub.directory: the %s entry's key is not the one this hub pins (%s); the "
                "hub keeps its own", entry.agency_id,
                "agencies will refuse the hub's messages" if entry.agency_id == HUB_ID
                else "update the worker's configuration if the key was rotated",
            )  # fmt: skip
