"""Citizen authentication: a signed challenge, standing in for the My Number card.

A citizen holds an Ed25519 key pair (the card's authentication key). Its public key is
registered, through the registry's counter, in the *citizen key list*
(``citizens.json``): resident code → public key, plus the person's audit key, which the
hub side computes at registration (``renkei portal register-citizen``) so that the portal
itself never needs the master secret. Logging in:

1. the portal hands out a challenge: a random nonce and the time, signed with the
   portal secret (HMAC-SHA256, ``itsdangerous``). Nothing is stored, so strangers asking
   for millions of challenges fill no queue; a challenge is valid two minutes;
2. the citizen's device signs ``renkei-portal-login/v1 \\n <portal id> \\n <challenge>
   \\n <resident code>`` (:func:`login_message`);
3. the portal checks the challenge's HMAC and age, marks its nonce used in the shared
   store (so it works once, on any portal process sharing the store), checks the
   signature against the registered key and answers a session token: the resident code,
   a fingerprint of the key that logged in and a session id, with the time, signed with
   the portal secret and valid 15 minutes. Any process holding the secret accepts it,
   before and after a restart; registering a new key for the citizen ends it.

A failure says only "authentication failed", whatever the reason, and uses the challenge
up. Known and unknown resident codes take the same steps (an unknown code is checked
against a decoy key), so neither the answer nor the work done tells them apart. Failed
attempts per resident code are counted in the store and throttled
(:class:`~renkei.errors.ThrottledError`).

Passkeys (:mod:`.passkeys`) use the same challenges, failure counts and sessions: a
session names the fingerprint of the passkey's public key, and
:attr:`Authenticator.passkey_sessions` says whether that passkey is still valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from limits import parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from renkei.crypto import SigningKey, verify
from renkei.errors import (
    AuthenticationError,
    ConfigurationError,
    SignatureError,
    ThrottledError,
)

from .citizens import CitizenRegistry

__all__ = ["Authenticator", "Session", "fingerprint", "login_message"]


def login_message(portal_id: str, challenge: str, resident_code: str) -> bytes:
    """The bytes a citizen signs to log in."""
    return f"renkei-portal-login/v1\n{portal_id}\n{challenge}\n{resident_code}".encode()


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in citizen."""

    audit_key: str
    resident_code: str
    expires: float  # time.time() when the token stops being accepted
    session_id: str


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer with a clock tests can move (no sleeping)."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class Authenticator:
    """Challenges and sessions, signed with the portal secret; used challenges, logged-out
    sessions and failure counts in a ``limits`` storage.

    :param citizens: the citizen key list.
    :param portal_id: names this portal in the signed message, so a signature for another
        service is useless here.
    :param secret: the portal secret (32+ bytes); every process of one portal must have
        the same. ``None``: a random one, good for this object's lifetime only.
    :param challenge_ttl_s: how long a challenge may be answered.
    :param session_ttl_s: how long a session lasts.
    :param store: where used challenges, logouts and failures are counted; share one
        (``redis://…``) between processes. ``None``: this process's memory.
    :param resident_limit: failed logins allowed per resident code (``limits`` notation).
    :param clock: the time, in seconds since the epoch.
    """

    def __init__(
        self,
        citizens: CitizenRegistry,
        portal_id: str = "renkei-portal",
        *,
        secret: bytes | None = None,
        challenge_ttl_s: int = 120,
        session_ttl_s: int = 900,
        store: Storage | None = None,
        resident_limit: str = "10 per 15 minutes",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is not None and len(secret) < 32:
            raise ConfigurationError("the portal secret must be at least 32 bytes")
        key = secret if secret is not None else secrets.token_bytes(32)
        self.citizens = citizens
        self.portal_id = portal_id
        self.challenge_ttl_s = challenge_ttl_s
        self.session_ttl_s = session_ttl_s
        signing = {"digest_method": hashlib.sha256, "clock": clock}
        self._challenges = URLSafeTimedSerializer(
            key, salt="renkei-portal/challenge/v1", signer=_ClockedSigner, signer_kwargs=signing
        )
        self._sessions = URLSafeTimedSerializer(
            key, salt="renkei-portal/session/v1", signer=_ClockedSigner, signer_kwargs=signing
        )
        self.store: Storage = store if store is not None else MemoryStorage()
        self._failures = MovingWindowRateLimiter(self.store)
        self._resident_limit = parse(resident_limit)
        self._decoy = SigningKey.generate().public_bytes
        self._clock = clock
        self._key = key
        # Passkeys (:mod:`.passkeys`): (resident code, key fingerprint) → audit key, for
        # sessions that began with a passkey rather than a key in the citizen key list.
        self.passkey_sessions: Callable[[str, str], str | None] | None = None

    def serializer(self, salt: str) -> URLSafeTimedSerializer:
        """A serializer signed with the portal secret under ``salt`` (one per purpose)."""
        return URLSafeTimedSerializer(
            self._key, salt=salt, signer=_ClockedSigner,
            signer_kwargs={"digest_method": hashlib.sha256, "clock": self._clock},
        )  # fmt: skip

    def first_use(self, name: str, ttl_s: int) -> bool:
        """Mark ``name`` used in the shared store; True only the first time (within ``ttl_s``)."""
        return self.store.incr(f"renkei-portal/used/{name}", ttl_s + 1) == 1

    def use_challenge(self, challenge: str) -> bool:
        """Whether ``challenge`` is one of ours, not expired and not used before (it is now)."""
        nonce = self._nonce(challenge)
        return nonce is not None and self.first_use(nonce, self.challenge_ttl_s)

    def throttled(self, resident_code: str) -> bool:
        """Too many failures for ``resident_code`` lately."""
        return not self._failures.test(self._resident_limit, "login-failures", resident_code)

    def failed(self, resident_code: str) -> None:
        """Count a failure against ``resident_code``."""
        self._failures.hit(self._resident_limit, "login-failures", resident_code)

    def issue(self, resident_code: str, public_key: bytes, audit_key: str) -> tuple[str, Session]:
        """A new session token for a citizen who proved to hold ``public_key``."""
        session_id = secrets.token_urlsafe(12)
        token = self._sessions.dumps([resident_code, _fingerprint(public_key), session_id])
        expires = float(int(self._clock())) + self.session_ttl_s
        return token, Session(audit_key, resident_code, expires, session_id)

    def challenge(self) -> str:
        """A fresh challenge (signed, so nothing is kept until it is answered)."""
        return self._challenges.dumps(secrets.token_urlsafe(16))

    def login(self, resident_code: str, challenge: str, signature: str) -> tuple[str, Session]:
        """Check the signed challenge; return a new session token and the session.

        :param signature: the citizen's Ed25519 signature, standard base64.
        :raises ThrottledError: too many failures for this resident code lately.
        :raises AuthenticationError: for any other reason (the reason is not told).
        """
        if self.throttled(resident_code):
            raise ThrottledError("too many attempts")
        fresh = self.use_challenge(challenge)
        citizen = self.citizens.lookup(resident_code)
        # Same steps for an unknown code: verify against a key nobody holds.
        public_key, audit_key = citizen if citizen is not None else (self._decoy, "")
        message = login_message(self.portal_id, challenge, resident_code)
        signed = _verifies(public_key, message, signature)
        if not (fresh and signed and citizen is not None):
            self.failed(resident_code)
            raise AuthenticationError("authentication failed")
        return self.issue(resident_code, public_key, audit_key)

    def _nonce(self, challenge: str) -> str | None:
        try:
            nonce = self._challenges.loads(challenge, max_age=self.challenge_ttl_s)
        except BadData:
            return None
        return nonce if isinstance(nonce, str) else None

    def session(self, token: str | None) -> Session | None:
        """The live session of ``token``, if any."""
        if not token:
            return None
        try:
            claims, issued = self._sessions.loads(
                token, max_age=self.session_ttl_s, return_timestamp=True
            )
        except BadData:
            return None
        if not (isinstance(claims, list) and len(claims) == 3):
            return None
        resident_code, fingerprint, session_id = claims
        if self.store.get(f"renkei-portal/out/{session_id}"):
            return None
        citizen = self.citizens.lookup(str(resident_code))
        if citizen is not None and _fingerprint(citizen[0]) == fingerprint:
            audit_key: str | None = citizen[1]
        elif self.passkey_sessions is not None:
            audit_key = self.passkey_sessions(str(resident_code), str(fingerprint))
        else:
            audit_key = None
        if audit_key is None:
            return None  # no longer registered, or a new key since: the session ends
        expires = issued.timestamp() + self.session_ttl_s
        return Session(audit_key, str(resident_code), expires, str(session_id))

    def logout(self, token: str | None) -> None:
        """End the session of ``token`` (remembered in the store until it would expire)."""
        session = self.session(token)
        if session is not None:
            self.store.incr(f"renkei-portal/out/{session.session_id}", self.session_ttl_s + 1)


def fingerprint(public_key: bytes) -> str:
    """What a session token names the key that logged in by (SHA-256, 16 hex)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


_fingerprint = fingerprint


def _verifies(public_key: bytes, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        verify(public_key, message, raw)
    except (binascii.Error, ValueError, SignatureError):
        return False
    return True
