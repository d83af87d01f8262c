"""What agencies run to read from the hub: one inbox reader, the provider, life events.

:class:`InboxReader` reads ``agency.<id>.in`` (committed records, each decoded once,
verified, de-duplicated) and hands each message to the handler of its type;
:class:`ProviderService` answers forwarded requests with sealed values;
:class:`LifecycleSubscriber` hands life-event notices and link-code remaps to the
agency. Both, and :class:`producers.AgencyClient`, derive from :class:`InboxService`: each
uses a reader of its own or one shared by all of them. :class:`Deduplicator` is the
reader's memory of the message ids it handled; :mod:`consumers.trust` says where the
hub's verification key, which every reader requires by default, comes from;
:class:`HeadWitness` (:mod:`consumers.witness`) checks the audit trail's signed tree heads.
:class:`BackgroundService` and :class:`Service` (:mod:`consumers.running`) are the
``async with`` life cycle they, the client and the registry publisher share.
"""

from __future__ import annotations

from consumers.dedup import DEFAULT_CAPACITY, Deduplicator
from consumers.dispatch import Dispatcher
from consumers.inbox import InboxReader, StartAt
from consumers.lifecycle import LifecycleSubscriber, NoticeHandler, RemapHandler
from consumers.provider import Handler, ProviderService, build_response, response_id
from consumers.running import BackgroundService, Service
from consumers.service import InboxService
from consumers.trust import HUB_BUNDLE_ENV, HubKey, TrustSettings, hub_verification_key
from consumers.witness import HeadWitness, WitnessSettings

__all__ = [
    "DEFAULT_CAPACITY",
    "HUB_BUNDLE_ENV",
    "BackgroundService",
    "Deduplicator",
    "Dispatcher",
    "Handler",
    "HeadWitness",
    "HubKey",
    "InboxReader",
    "InboxService",
    "LifecycleSubscriber",
    "NoticeHandler",
    "ProviderService",
    "RemapHandler",
    "Service",
    "StartAt",
    "TrustSettings",
    "WitnessSettings",
    "build_response",
    "hub_verification_key",
    "response_id",
]
