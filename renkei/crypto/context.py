"""What binds sealed attribute values to their exchange: one helper both sides call.

The provider seals to the requester's reply key with this ``aad``; the requester opens
with the same bytes. Both know every part without trusting the hub to relay it honestly:
the requester from its own request, the provider from the forwarded request (scenario,
requester, reply key) and from being itself. A payload the hub swapped between exchanges,
requesters or providers therefore fails to open.
"""

from __future__ import annotations

from .sealing import exchange_aad

__all__ = ["attributes_aad"]


def attributes_aad(
    scenario_id: str, requester: str, provider: str, reply_public_key: bytes
) -> bytes:
    """The HPKE ``aad`` of one attribute answer.

    :param scenario_id: the scenario the request was made under.
    :param requester: agency id of the requester (A).
    :param provider: agency id of the provider (B).
    :param reply_public_key: the requester's reply key the values are sealed to.
    """
    return exchange_aad(scenario_id, requester, provider, bytes(reply_public_key).hex())
