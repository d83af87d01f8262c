"""What the portal knows of passkeys: registrations from the hub side, its own credentials.

:class:`PasskeyStore` is fed by :mod:`.passkey_follow` from two topics:

* ``hub.portal.registrations``: per resident code, the newest registration that a pinned
  audit key verifies (:mod:`.offers`); an older one read later (a registrar re-publishing
  after a restart) changes nothing;
* ``portal.credentials``: the portal's own passkeys, each record signed with the portal
  secret (``itsdangerous``), so a record someone else wrote there is ignored; of two
  records of one credential the higher sign count wins.

A passkey is valid while the offer it was registered with is its resident's current
registration: a newer offer revokes it, and the sessions it began.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from itsdangerous import BadData

from renkei.auditchain import TrustedKeys
from renkei.errors import AuthenticationError, ContractError, SignatureError

from .auth import Authenticator, fingerprint
from .offers import Registration, read_registration

__all__ = ["Credential", "PasskeyStore", "Writer"]

_SALT_CREDENTIAL = "renkei-portal/credential/v1"


@dataclass(frozen=True, slots=True)
class Credential:
    """A registered passkey."""

    credential_id: str  # base64url, as the browser names it
    public_key: bytes  # COSE
    sign_count: int
    resident_code: str
    offer_id: str
    audit_key: str
    registered_at_ms: int


Writer = Callable[[str, bytes], Awaitable[None]]


class PasskeyStore:
    """Registrations and credentials, as the topics say.

    :param auth: the portal secret (records are signed with it) and the sessions, which
        ask :meth:`session_audit_key` about passkey sessions.
    :param trusted: the pinned audit keys registrations must verify with.
    """

    def __init__(self, auth: Authenticator, trusted: TrustedKeys) -> None:
        self._trusted = trusted
        self.registrations: dict[str, Registration] = {}
        self.credentials: dict[str, Credential] = {}
        self._sessions: dict[tuple[str, str], str] = {}  # (resident, key fingerprint) → id
        self.consumed: set[str] = set()  # offer ids a passkey was registered with
        self.rejected = 0  # records on either topic that did not verify
        self.writer: Writer | None = None  # writes portal.credentials (key, value)
        # Set by the follower: passkeys must reach portal.credentials, or other processes
        # (and this one after a restart) would not know them; without Kafka, memory only.
        self.durable = False
        self._records = auth.serializer(_SALT_CREDENTIAL)
        auth.passkey_sessions = self.session_audit_key

    def learn_registration(self, value: bytes | None) -> None:
        """Take a record of ``hub.portal.registrations`` (ignored unless a pinned key signed
        it; an older registration than the one held changes nothing)."""
        if value is None:
            return
        try:
            new = read_registration(value, self._trusted)
        except (ContractError, SignatureError):
            self.rejected += 1
            return
        held = self.registrations.get(new.resident_code)
        if held is None or held.issued_at_ms <= new.issued_at_ms:
            self.registrations[new.resident_code] = new

    def learn_credential(self, value: bytes | None) -> None:
        """Take a record of ``portal.credentials`` (ignored unless the portal secret signed it)."""
        if value is None:
            return
        try:
            fields = self._records.loads(value.decode())
            credential = Credential(
                str(fields[0]), base64.b64decode(fields[1]), int(fields[2]), str(fields[3]),
                str(fields[4]), str(fields[5]), int(fields[6]),
            )  # fmt: skip
        except (BadData, UnicodeDecodeError, ValueError, TypeError, IndexError, KeyError):
            self.rejected += 1
            return
        self.remember(credential)

    def record(self, credential: Credential) -> bytes:
        """The ``portal.credentials`` value of ``credential``."""
        fields = [
            credential.credential_id, base64.b64encode(credential.public_key).decode(),
            credential.sign_count, credential.resident_code, credential.offer_id,
            credential.audit_key, credential.registered_at_ms,
        ]  # fmt: skip
        return self._records.dumps(fields).encode()

    def remember(self, credential: Credential) -> None:
        """Hold ``credential`` (unless a higher sign count of it is held already)."""
        held = self.credentials.get(credential.credential_id)
        if held is not None and held.sign_count > credential.sign_count:
            return  # an older record read after a newer one: keep the higher count
        self.credentials[credential.credential_id] = credential
        self.consumed.add(credential.offer_id)
        key = (credential.resident_code, fingerprint(credential.public_key))
        self._sessions[key] = credential.credential_id

    async def store(self, credential: Credential) -> None:
        """Write ``credential`` to the topic (acknowledged), then remember it.

        :raises AuthenticationError: the topic cannot be written now.
        """
        if self.writer is not None:
            try:
                await self.writer(credential.credential_id, self.record(credential))
            except Exception as exc:  # any Kafka failure: refuse rather than forget it
                raise AuthenticationError(f"portal.credentials: {type(exc).__name__}") from exc
        elif self.durable:
            raise AuthenticationError("portal.credentials is not reachable")
        self.remember(credential)

    def current(self, credential: Credential) -> Registration | None:
        """The registration ``credential`` is valid under; None once a newer offer came."""
        registration = self.registrations.get(credential.resident_code)
        if registration is None or registration.offer_id != credential.offer_id:
            return None  # revoked by a newer offer
        return registration

    def session_audit_key(self, resident_code: str, key_fingerprint: str) -> str | None:
        """The audit key of a passkey session, while its passkey is still valid."""
        credential_id = self._sessions.get((resident_code, key_fingerprint))
        credential = self.credentials.get(credential_id or "")
        registration = None if credential is None else self.current(credential)
        return None if registration is None else registration.audit_key
