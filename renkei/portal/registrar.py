"""The hub side of passkey registration: registry offers in, signed registrations out.

Runs where the master secret is (``renkei portal registrar``), never in the portal. It
follows ``registry.portal`` and the hub's person table (``hub.state.persons``) in one
consumer, from their beginning:

* an offer is believed only when the registry's **pinned** key
  (``RENKEI_HUB_REGISTRY_PUBLIC_KEY_FILE``, as the hub itself pins it) verifies it and it
  has not expired; anything else is logged and dropped (:meth:`Registrar.offer`);
* an offer for a person the hub does not know yet (the registry registered them a moment
  ago) waits until the person table has them, or until the offer expires;
* the person's audit key is computed from their ID code with the master secret, and the
  :class:`~.offers.Registration` is signed with the audit signing key and written to
  ``hub.portal.registrations`` keyed by resident code.

After a restart it reads everything again and re-publishes what has not expired: the same
offer gives the same bytes (Ed25519 is deterministic), and the portal ignores a
registration older than the one it holds, so re-publishing changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from hub_stream.records import PersonState
from hub_stream.sealed_state import persons_table
from hub_stream.state import Table
from renkei.auditchain import AuditSigner
from renkei.crypto import KeyRing, SigningKey, audit_key
from renkei.errors import AuditError, ContractError, RegistrationError, SignatureError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics

from .offers import Offer, Registration, make_offer, read_offer, sign_registration

__all__ = ["Registrar", "publish_offer", "run_registrar"]

log = logging.getLogger(__name__)


class Registrar:
    """Offers → registrations, as a function of what was read (no Kafka in here).

    :param persons: the hub's person table (filled by the caller as records arrive).
    :param keyring: the master secret's keys (the audit key of a person).
    :param signer: the audit signing key, which the portal pins.
    :param registry_key: the registry's pinned Ed25519 public key.
    :param clock: milliseconds since the epoch.
    """

    def __init__(
        self,
        persons: Table[PersonState],
        keyring: KeyRing,
        signer: AuditSigner,
        registry_key: bytes,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.persons = persons
        self._keyring = keyring
        self._signer = signer
        self._registry_key = registry_key
        self._clock = clock
        self.waiting: dict[str, Offer] = {}  # resident code → its latest offer not yet done
        self.refused = 0

    def offer(self, value: bytes | None) -> None:
        """Take one record of ``registry.portal``; a bad one is counted and dropped.

        :raises nothing: whatever is wrong with the record is logged.
        """
        if value is None:
            return
        try:
            offer = read_offer(value, self._registry_key, self._clock())
        except (ContractError, SignatureError, RegistrationError) as exc:
            self.refused += 1
            log.warning("registrar: offer refused: %s", exc)
            return
        earlier = self.waiting.get(offer.resident_code)
        if earlier is None or earlier.issued_at_ms <= offer.issued_at_ms:
            self.waiting[offer.resident_code] = offer

    def ready(self) -> list[Registration]:
        """Registrations of the waiting offers whose person is known now; drops the expired."""
        now, done = self._clock(), []
        for resident_code, offer in list(self.waiting.items()):
            if offer.expires_at_ms <= now:
                del self.waiting[resident_code]
                continue
            person = self.persons.get(resident_code)
            if person is None:
                continue
            key = audit_key(self._keyring, bytes.fromhex(person.id_code))
            done.append(sign_registration(self._signer, offer, key))
            del self.waiting[resident_code]
        return done


async def publish_offer(
    kafka: dict[str, Any],
    topics: Topics,
    registry: SigningKey,
    resident_code: str,
    *,
    ttl_s: int = 7 * 86400,
) -> tuple[Offer, str]:
    """The registry's counter: sign an offer for ``resident_code`` and publish it.

    :returns: the offer and the registration code to hand to the citizen.
    """
    offer, code = make_offer(registry, resident_code, ttl_s=ttl_s)
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.registry_portal, offer.model_dump_json().encode(), key=resident_code.encode()
        )
    finally:
        await producer.stop()
    return offer, code


async def run_registrar(
    kafka: dict[str, Any],
    topics: Topics,
    keyring: KeyRing,
    signer: AuditSigner,
    registry_key: bytes,
    *,
    registrar: Registrar | None = None,
) -> None:
    """Follow offers and persons, publish registrations, until cancelled.

    :param registrar: the state to use (tests look at it); a fresh one by default.
    :raises AuditError: a topic does not exist (the hub creates them when it starts).
    """
    persons_topic = topics.state("persons")
    work = registrar or Registrar(persons_table(keyring, persons_topic), keyring, signer,
                                  registry_key)  # fmt: skip
    consumer = committed_reader(kafka, group_id=None)
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        tps = []
        for topic in (topics.registry_portal, persons_topic):
            found = await topic_partitions(consumer, topic)
            if not found:
                raise AuditError(f"topic {topic} does not exist (yet)")
            tps += [TopicPartition(topic, p) for p in found]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if tp.topic == persons_topic:
                        if record.key is not None:
                            work.persons.load(record.key, record.value)
                    else:
                        work.offer(record.value)
            for registration in work.ready():
                await producer.send_and_wait(
                    topics.portal_registrations, registration.model_dump_json().encode(),
                    key=registration.resident_code.encode(),
                )  # fmt: skip
                log.info("registrar: offer %s registered", registration.offer_id)
            await asyncio.sleep(0)
    finally:
        await producer.stop()
        await consumer.stop()
