"""What agencies run to read from the hub: the provider service, life events, de-duplication.

:class:`ProviderService` answers forwarded requests with sealed values;
:class:`LifecycleSubscriber` hands life-event notices and link-code remaps to the agency;
:class:`Deduplicator` drops the messages a hub retry delivers twice.
"""

from __future__ import annotations

from consumers.dedup import DEFAULT_CAPACITY, Deduplicator
from consumers.lifecycle import LifecycleSubscriber, NoticeHandler, RemapHandler
from consumers.provider import Handler, ProviderService, build_response, response_id

__all__ = [
    "DEFAULT_CAPACITY",
    "Deduplicator",
    "Handler",
    "LifecycleSubscriber",
    "NoticeHandler",
    "ProviderService",
    "RemapHandler",
    "build_response",
    "response_id",
]
