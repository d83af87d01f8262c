"""Passkeys (WebAuthn, with ``webauthn``): registering one with a code from the registry,
and logging in with it. It stands in for the My Number card; the Ed25519 challenge of
:mod:`.auth` stays, as the card reader's way in.

What the portal knows — registrations from the hub side, its own credentials — is in
:class:`~.passkey_store.PasskeyStore`, fed from Kafka by :mod:`.passkey_follow`; a passkey
registered on one process works on all, and after a restart.

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
from collections.abc import Callable
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
    RegistrationError,
    ThrottledError,
)

from .auth import Authenticator, Session
from .offers import Registration
from .passkey_store import Credential, PasskeyStore

__all__ = ["Credential", "PasskeyConfig", "Passkeys"]

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


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Passkeys(PasskeyStore):
    """Both ceremonies, on what the :class:`~.passkey_store.PasskeyStore` holds.

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
        super().__init__(auth, trusted)
        self.auth, self.config, self._clock = auth, config, clock
        self._challenges = auth.serializer(_SALT_REGISTER)

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
            await self.store(stored)
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
        registration = self.current(known)
        if not (fresh and verified is not None and registration is not None):
            self.auth.failed(known.resident_code)
            raise AuthenticationError("authentication failed")
        await self.store(replace(known, sign_count=verified.new_sign_count))
        return self.auth.issue(known.resident_code, known.public_key, registration.audit_key)
