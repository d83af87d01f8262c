"""An agency's life-event subscriber: notices and link-code remaps, at the agency's pace.

:class:`LifecycleSubscriber` reads ``agency.<id>.in`` in its own consumer group and calls
the agency's handler for each :class:`~schemas.models.LifeEventNotice` by event kind
(corrections and annulments go to the handler of the kind they correct: the notice's
``action`` says which it is), and ``on_remap`` for each
:class:`~schemas.models.LinkCodeRemap` after a key rotation.

**Delivery.** Messages come through an :class:`~consumers.inbox.InboxReader`: committed
data only, de-duplicated by message id, and a partition's offset committed only after
the handlers of everything before it have returned (that module says exactly what is
seen again after a crash). An agency offline for a day resumes from its committed
offsets and catches up, in order per person: the hub keys every notice by the agency's
link code, so one person's notices are in one partition, and notices and remaps are
handled one at a time in offset order. If a handler raises, the offsets of what was
handled are committed, the subscriber stops with that error, and the failed message is
the first one handled after a restart.

**Sharing the topic.** ``agency.<id>.in`` also carries enrolment results, forwarded
requests, attribute answers and errors. With a reader of its own the subscriber counts
and skips them (:attr:`ignored`); the agency's :class:`~producers.AgencyClient` and
:class:`~consumers.ProviderService` read them with theirs — or all three share one
reader (``inbox=``), and each record is read and decoded once.

**Order across a rotation.** A remap is keyed by the *new* code, so it comes before every
later notice about the person; notices sent before it are keyed by the old code and may
sit in another partition. Keep the old code as an alias of the new one until
``old_codes_valid_until``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.service import InboxService
from schemas.models import EventKind, LifeEventNotice, LinkCodeRemap, Message

__all__ = ["LifecycleSubscriber", "NoticeHandler", "RemapHandler"]

NoticeHandler = Callable[[LifeEventNotice], Awaitable[None]]
"""Applies one life-event notice (original, correction or annulment) to the agency's data."""
RemapHandler = Callable[[LinkCodeRemap], Awaitable[None]]
"""Replaces the agency's stored link code ``old_link_code`` by ``new_link_code``."""


@dataclass(eq=False, repr=False)
class LifecycleSubscriber(InboxService):
    """Hands an agency's life-event notices and link-code remaps to its handlers.

    Use as ``async with LifecycleSubscriber(...)`` (reads in the background; an error that
    stopped it is raised on exit) or call :meth:`start`, then ``await run()``. Parameters
    before ``handlers`` and the keyword-only reader settings are
    :class:`~consumers.service.InboxService`'s. A reader of its own defaults to the group
    ``"<prefix>agency.<id>.lifecycle"`` (the ACLs give an agency the groups
    ``agency.<id>.*``), whose members share the partitions: its committed offsets are
    where a restarted subscriber resumes; a new group starts at the oldest retained
    message.

    :param handlers: a handler per event kind; notices of other kinds are counted in
        :attr:`unhandled` and skipped.
    :param on_remap: called for each ``LinkCodeRemap``; without it remaps are counted in
        :attr:`unhandled` and skipped (and the agency's old codes expire after the grace
        period).
    """

    handlers: Mapping[EventKind, NoticeHandler]
    on_remap: RemapHandler | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handlers = dict(self.handlers)
        self.notices = 0
        """Notices handed to a handler."""
        self.remaps = 0
        """Remaps handed to ``on_remap``."""
        self.unhandled = 0
        """Notices of a kind with no handler, and remaps without ``on_remap``."""
        self.reader.route(LifeEventNotice, self._on_notice)
        self.reader.route(LinkCodeRemap, self._on_remap)

    def _reader_defaults(self) -> dict[str, Any]:
        return {"group_id": f"{self.topics.prefix}agency.{self.agency_id}.lifecycle",
                "share_partitions": True}  # fmt: skip

    async def dispatch(self, message: Message) -> bool:
        """Hand one decoded message over through the inbox reader; True if a handler ran.

        A message is remembered as handled only once its handler has returned, so a
        handler that raised gets the message again.
        """
        return await self.reader.dispatch(message)

    async def _on_notice(self, notice: LifeEventNotice) -> bool:
        handler = self.handlers.get(notice.kind)
        if handler is None:
            self.unhandled += 1
            return False
        await handler(notice)
        self.notices += 1
        return True

    async def _on_remap(self, remap: LinkCodeRemap) -> bool:
        if self.on_remap is None:
            self.unhandled += 1
            return False
        await self.on_remap(remap)
        self.remaps += 1
        return True
