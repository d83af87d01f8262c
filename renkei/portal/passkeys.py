"""Passkeys (WebAuthn, with ``webauthn``): registering one with a code from the registry,
and logging in with it. It stands in for the My Number card; the Ed25519 challenge of
:mod:`.auth` stays, as the card reader's way in.

What the portal knows comes from two topics (:mod:`.passkey_follow`):

* ``hub.portal.registrations``: per resident code, the latest registration the hub side
  signed with a pinned audit key (:mod:`.offers`) — the person's audit key and the hash
  of the one-time registration code handed out at the counter;
* ``portal.credentials``: the portal's own credentials (id, COSE public key, sign count,
  resident code, the offer it was registered with), each record signed with the portal
  secret, so a record someone else wrote there is ignored. Every process of the portal
  reads it, so a passkey registered on one works on all, and after a restart.

A passkey is valid while the offer it was registered with is the resident's current one:
a new offer from the registry (a lost phone) revokes it, and its sessions end. Each offer
registers one passkey, once: the first use is marked in the shared limits store (at once,
on every process sharing it) and is on ``portal.credentials`` for good.

Challenges are stateless and signed with the portal secret, like the Ed25519 ones, and
used once. A login's sign count must grow (a cloned authenticator shows an old count).
Every failure is an :class:`~renkei.errors.AuthenticationError` (registration:
:class:`~renkei.errors.RegistrationError`); the caller answers only 401.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadData
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from renkei.auditchain import TrustedKeys
from renkei.errors import (
    AuthenticationError,
    ContractError,
    RegistrationError,
    SignatureError,
    ThrottledError,
)

from .auth import Authenticator, Session, fingerprint
from .offers import Registration, read_registration

__all__ = ["Credential", "PasskeyConfig", "Passkeys"]

_SALT_CREDENTIAL = "renkei-portal/credential/v1"
_SALT_REGISTER = "renkei-portal/passkey-registration/v1"


@dataclass(frozen=True)
class PasskeyConfig:
    """The relying party.

    :param rp_id: the portal's host name (``localhost`` in development); a passkey works
        only on this host and its subdomains.
    :param origins: the exact origins the browser may report (``https://portal.example``).
    :param rp_name: shown by the browser while registering.
    :param timeout_ms: how long the browser waits for the citizen.
    """

    rp_id: str = "localhost"
    origins: tuple[str, ...] = ("http://localhost:8080",)
    rp_name: str = "マイ・ポータル / My Portal"
    timeout_ms: int = 120_000


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


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Passkeys:
    """Registrations, credentials and both ceremonies.

    :param auth: challenges, sessions, the shared store and the per-code failure limits.
    :param config: the relying party.
    :param trusted: the pinned audit keys registrations must verify with.
    :param clock: seconds since the epoch.
    """

    def __init__(
        self,
        auth: Authenticator,
        config: PasskeyConfig,
        trusted: TrustedKeys,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth, self.config, self._trusted, self._clock = auth, config, trusted, clock
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
        self._challenges = auth.serializer(_SALT_REGISTER)
        auth.passkey_sessions = self.session_audit_key

    # -- what the topics say ---------------------------------------------------------

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
        self._remember(credential)

    def record(self, credential: Credential) -> bytes:
        """The ``portal.credentials`` value of ``credential``."""
        fields = [
            credential.credential_id, base64.b64encode(credential.public_key).decode(),
            credential.sign_count, credential.resident_code, credential.offer_id,
            credential.audit_key, credential.registered_at_ms,
        ]  # fmt: skip
        return self._records.dumps(fields).encode()

    def _remember(self, credential: Credential) -> None:
        held = self.credentials.get(credential.credential_id)
        if held is not None and held.sign_count > credential.sign_count:
            return  # an older record read after a newer one: keep the higher count
        self.credentials[credential.credential_id] = credential
        self.consumed.add(credential.offer_id)
        key = (credential.resident_code, fingerprint(credential.public_key))
        self._sessions[key] = credential.credential_id

    async def _store(self, credential: Credential) -> None:
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
        self._remember(credential)

    def _current(self, credential: Credential) -> Registration | None:
        registration = self.registrations.get(credential.resident_code)
        if registration is None or registration.offer_id != credential.offer_id:
            return None  # revoked by a newer offer
        return registration

    def session_audit_key(self, resident_code: str, key_fingerprint: str) -> str | None:
        """The audit key of a passkey session, while its passkey is still valid."""
        credential_id = self._sessions.get((resident_code, key_fingerprint))
        credential = self.credentials.get(credential_id or "")
        registration = None if credential is None else self._current(credential)
        return None if registration is None else registration.audit_key

    # -- registration ----------------------------------------------------------------

    def registration_options(self, resident_code: str, code: str) -> dict[str, Any]:
        """Check the registration code; the creation options (JSON) and their challenge.

        :raises ThrottledError: too many failures for ``resident_code``.
        :raises RegistrationError: no current offer, a wrong code, used or expired.
        """
        if self.auth.throttled(resident_code):
            raise ThrottledError("too many attempts")
        registration = self.registrations.get(resident_code)
        if registration is None or not registration.matches(code):
            self.auth.failed(resident_code)
            raise RegistrationError("no offer with this code")
        self._usable(registration)
        challenge = self._challenges.dumps(
            [secrets.token_urlsafe(16), resident_code, registration.offer_id]
        )
        options = generate_registration_options(
            rp_id=self.config.rp_id, rp_name=self.config.rp_name, user_name=resident_code,
            user_id=bytes.fromhex(registration.offer_id), challenge=challenge.encode(),
            timeout=self.config.timeout_ms,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
        )  # fmt: skip
        return {"publicKey": json.loads(options_to_json(options)), "challenge": challenge}

    def _usable(self, registration: Registration) -> None:
        if registration.expires_at_ms <= self._clock() * 1000:
            self.auth.failed(registration.resident_code)
            raise RegistrationError("the offer expired")
        used = self.auth.store.get(f"renkei-portal/used/offer/{registration.offer_id}")
        if registration.offer_id in self.consumed or used:
            self.auth.failed(registration.resident_code)
            raise RegistrationError("the registration code was used")

    async def register(self, challenge: str, credential: dict[str, Any]) -> tuple[str, Session]:
        """Finish a registration: store the passkey, start a session.

        :raises RegistrationError: any failure (the challenge is used up either way).
        """
        try:
            nonce, resident_code, offer_id = self._challenges.loads(
                challenge, max_age=self.auth.challenge_ttl_s
            )
        except (BadData, ValueError, TypeError):
            raise RegistrationError("not a registration challenge of ours") from None
        if not self.auth.first_use(f"passkey/{nonce}", self.auth.challenge_ttl_s):
            raise RegistrationError("the challenge was used")
        registration = self.registrations.get(str(resident_code))
        if registration is None or registration.offer_id != offer_id:
            raise RegistrationError("the offer is no longer current")
        self._usable(registration)
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge.encode(),
                expected_rp_id=self.config.rp_id, expected_origin=list(self.config.origins),
                require_user_verification=True,
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            self.auth.failed(registration.resident_code)
            raise RegistrationError(f"the passkey does not verify: {exc}") from None
        credential_id = _b64u(verified.credential_id)
        remaining_s = int(registration.expires_at_ms / 1000 - self._clock()) + 1
        if credential_id in self.credentials or not self.auth.first_use(
            f"offer/{offer_id}", max(remaining_s, 1)
        ):
            raise RegistrationError("the registration code was used")
        stored = Credential(
            credential_id, verified.credential_public_key, verified.sign_count,
            registration.resident_code, offer_id, registration.audit_key,
            int(self._clock() * 1000),
        )  # fmt: skip
        try:
            await self._store(stored)
        except AuthenticationError as exc:
            self.auth.store.clear(f"renkei-portal/used/offer/{offer_id}")  # the code still works
            raise RegistrationError(str(exc)) from exc
        return self.auth.issue(stored.resident_code, stored.public_key, registration.audit_key)

    # -- login -----------------------------------------------------------------------

    def login_options(self) -> dict[str, Any]:
        """Request options (JSON) for any passkey of this portal, and their challenge."""
        challenge = self.auth.challenge()
        options = generate_authentication_options(
            rp_id=self.config.rp_id, challenge=challenge.encode(),
            timeout=self.config.timeout_ms, user_verification=UserVerificationRequirement.REQUIRED,
        )  # fmt: skip
        return {"publicKey": json.loads(options_to_json(options)), "challenge": challenge}

    async def login(self, challenge: str, credential: dict[str, Any]) -> tuple[str, Session]:
        """Check an assertion; a new session token.

        :raises ThrottledError: too many failures for the passkey's resident code.
        :raises AuthenticationError: an unknown or revoked passkey, a used, expired or
            foreign challenge, a signature that does not verify, a sign count that did not
            grow.
        """
        fresh = self.auth.use_challenge(challenge)
        known = self.credentials.get(str(credential.get("id", "")))
        if known is None:
            raise AuthenticationError("unknown passkey")
        if self.auth.throttled(known.resident_code):
            raise ThrottledError("too many attempts")
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge.encode(),
                expected_rp_id=self.config.rp_id, expected_origin=list(self.config.origins),
                credential_public_key=known.public_key,
                credential_current_sign_count=known.sign_count, require_user_verification=True,
            )  # fmt: skip
        except (WebAuthnException, ValueError, KeyError, TypeError):
            verified = None
        registration = self._current(known)
        if not (fresh and verified is not None and registration is not None):
            self.auth.failed(known.resident_code)
            raise AuthenticationError("authentication failed")
        await self._store(replace(known, sign_count=verified.new_sign_count))
        return self.auth.issue(known.resident_code, known.public_key, registration.audit_key)
