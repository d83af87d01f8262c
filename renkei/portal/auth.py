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

__all__ = ["Authenticator", "Session", "login_message"]


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

    def challenge(self) -> str:
        """A fresh challenge (signed, so nothing is kept until it is answered)."""
        return self._challenges.dumps(secrets.token_urlsafe(16))

    def login(self, resident_code: str, challenge: str, signature: str) -> tuple[str, Session]:
        """Check the signed challenge; return a new session token and the session.

        :param signature: the citizen's Ed25519 signature, standard base64.
        :raises ThrottledError: too many failures for this resident code lately.
        :raises AuthenticationError: for any other reason (the reason is not told).
        """
        if not self._failures.test(self._resident_limit, "login-failures", resident_code):
            raise ThrottledError("too many attempts")
        nonce = self._nonce(challenge)
        fresh = nonce is not None and self.store.incr(
            f"renkei-portal/used/{nonce}", self.challenge_ttl_s + 1
        ) == 1  # fmt: skip
        citizen = self.citizens.lookup(resident_code)
        # Same steps for an unknown code: verify against a key nobody holds.
        public_key, audit_key = citizen if citizen is not None else (self._decoy, "")
        message = login_message(self.portal_id, challenge, resident_code)
        signed = _verifies(public_key, message, signature)
        if not (fresh and signed and citizen is not None):
            self._failures.hit(self._resident_limit, "login-failures", resident_code)
            raise AuthenticationError("authentication failed")
        session_id = secrets.token_urlsafe(12)
        token = self._sessions.dumps([resident_code, _fingerprint(public_key), session_id])
        expires = float(int(self._clock())) + self.session_ttl_s
        return token, Session(audit_key, resident_code, expires, session_id)

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
        if citizen is None or _fingerprint(citizen[0]) != fingerprint:
            return None  # no longer registered, or a new key since: the session ends
        expires = issued.timestamp() + self.session_ttl_s
        return Session(citizen[1], str(resident_code), expires, str(session_id))

    def logout(self, token: str | None) -> None:
        """End the session of ``token`` (remembered in the store until it would expire)."""
        session = self.session(token)
        if session is not None:
            self.store.incr(f"renkei-portal/out/{session.session_id}", self.session_ttl_s + 1)


def _fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def _verifies(public_key: bytes, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        verify(public_key, message, raw)
    except (binascii.Error, ValueError, SignatureError):
        return False
    return True
