"""What binds sealed attribute values to their exchange: one helper both sides call.

The provider seals to the requester's reply key with this ``aad``; the requester opens
with the same bytes. Each side computes it from what it knows first-hand: the requester
from its own :class:`~schemas.models.AttributeRequest`, the provider from the
:class:`~schemas.models.ForwardedRequest` and from being itself. The hub relays the
parts but cannot change one after the provider sealed without the payload failing to
open: an answer moved onto another request (even one about another person under the same
scenario, to the same reply key), replayed onto a later request, or whose items the hub
altered on the way to the provider does not open.

Bound, in this order (``docs/contract.md``, "Sealed attribute values", byte for byte)::

    scenario_id, requester, provider, request_id, items (sorted, distinct, LF-joined),
    hex(reply_public_key)

under the HPKE ``info`` label :data:`~renkei.crypto.sealing.ATTRIBUTES_INFO`
(``renkei/attributes/v2``). Deliberately left out: the provider's link code (the
requester must not learn it) and the requester's link code and the hub's request id
(the provider does not know the first, the requester not the second). The request id is
what makes two answers under one reply key differ, so a requester never reuses one.
"""

from __future__ import annotations

from collections.abc import Iterable

from renkei.errors import SealingError

from .sealing import exchange_aad

__all__ = ["attributes_aad", "items_part"]


def items_part(items: Iterable[str]) -> str:
    """The items as one ``aad`` part: distinct codes sorted by code point, joined by LF.

    A set, not a list: the provider seals the distinct items asked for, whatever order
    or repetition the request had.

    :raises SealingError: an item code is empty or holds a line feed (the contract's item
        codes never do, and either would make two different sets give one part).
    """
    distinct = set(items)
    if any(not item or "\n" in item for item in distinct):
        raise SealingError("an item code is empty or holds a line feed")
    return "\n".join(sorted(distinct))


def attributes_aad(
    *,
    scenario_id: str,
    requester: str,
    provider: str,
    request_id: str,
    items: Iterable[str],
    reply_public_key: bytes,
) -> bytes:
    """The HPKE ``aad`` of one attribute answer (contract ``renkei/attributes/v2``).

    :param scenario_id: the scenario the request was made under.
    :param requester: agency id of the requester (A).
    :param provider: agency id of the provider (B).
    :param request_id: the requester's id of the request (``AttributeRequest.request_id``,
        forwarded as ``ForwardedRequest.request_id``).
    :param items: the item codes asked for.
    :param reply_public_key: the requester's reply key the values are sealed to.
    :raises SealingError: ``request_id`` is empty (an answer must name its request), or an
        item code is unusable (see :func:`items_part`).
    """
    if not request_id:
        raise SealingError("an attribute answer must be bound to a request id; none was given")
    return exchange_aad(
        scenario_id,
        requester,
        provider,
        request_id,
        items_part(items),
        bytes(reply_public_key).hex(),
    )
