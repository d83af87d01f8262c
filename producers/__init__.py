"""What agencies and the registry run: the agency client, the registry publisher.

:class:`AgencyClient` enrols records and asks for attributes through the hub;
:class:`RegistryPublisher` writes life events; :func:`attributes_aad` binds sealed
values to their exchange on both sides. ``producers.population`` makes synthetic people.
"""

from __future__ import annotations

from producers.agency_client import AgencyClient
from producers.answers import PendingRequest, open_response
from producers.registry_publisher import REGISTRY_ID, RegistryPublisher, event_message_id
from renkei.crypto.context import attributes_aad

__all__ = [
    "REGISTRY_ID",
    "AgencyClient",
    "PendingRequest",
    "RegistryPublisher",
    "attributes_aad",
    "event_message_id",
    "open_response",
]
