"""Citizen authentication: a signed challenge, standing in for the My Number card.

A citizen holds an Ed25519 key pair (the card's authentication key). Its public key is
registered, through the registry's counter, in the *citizen key list*
(``citizens.json``): resident code → public key, plus the person's audit key, which the
hub side computes at registration (``renkei portal register-citizen``) so that the portal
itself never needs the master secret. Logging in:

1. the portal hands out a random challenge (single use, valid two minutes);
2. the citizen's device signs ``renkei-portal-login/v1 \\n <portal id> \\n <challenge>
   \\n <resident code>`` (:func:`login_message`);
3. the portal checks the signature against the registered key and opens a session
   (a random token, kept only as its SHA-256, valid 15 minutes) bound to that audit key.

A failure says only "authentication failed", whatever the reason, and uses the challenge
up: unregistered resident codes cannot be told from wrong signatures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.crypto import verify
from renkei.errors import AuthenticationError, ConfigurationError, SignatureError

__all__ = [
    "Authenticator",
    "CitizenRegistry",
    "Session",
    "login_message",
    "register_citizen",
]


def login_message(portal_id: str, challenge: str, resident_code: str) -> bytes:
    """The bytes a citizen signs to log in."""
    return f"renkei-portal-login/v1\n{portal_id}\n{challenge}\n{resident_code}".encode()


class _Citizen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resident_code: str
    public_key: str  # standard base64, 32 bytes
    audit_key: str
    registered_at: str


class _CitizenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-citizens/1"] = "renkei-citizens/1"
    citizens: tuple[_Citizen, ...] = ()


class CitizenRegistry:
    """The citizen key list, re-read when the file changes.

    :param path: ``citizens.json``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._checked = 0.0
        self._citizens: dict[str, tuple[bytes, str]] = {}

    def lookup(self, resident_code: str) -> tuple[bytes, str] | None:
        """(public key, audit key) of a registered citizen."""
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            self._reload()
        return self._citizens.get(resident_code)

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._citizens = {}
            return
        if mtime == self._mtime:
            return
        parsed = _read(self.path)
        self._citizens = {
            c.resident_code: (base64.b64decode(c.public_key), c.audit_key) for c in parsed.citizens
        }
        self._mtime = mtime


def _read(path: Path) -> _CitizenFile:
    try:
        return _CitizenFile.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return _CitizenFile()
    except ValidationError as exc:
        raise ConfigurationError(f"{path} is not a citizen key list: {exc}") from exc


def register_citizen(path: Path, resident_code: str, public_key: bytes, audit_key: str) -> None:
    """Add (or replace, after a card reissue) a citizen's public key."""
    from datetime import UTC, datetime

    if len(public_key) != 32:
        raise ConfigurationError("a citizen key is a 32-byte Ed25519 public key")
    current = [c for c in _read(path).citizens if c.resident_code != resident_code]
    current.append(
        _Citizen(
            resident_code=resident_code,
            public_key=base64.b64encode(public_key).decode(),
            audit_key=audit_key,
            registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    document = _CitizenFile(citizens=tuple(current)).model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in citizen."""

    audit_key: str
    resident_code: str
    expires: float  # time.monotonic()


class Authenticator:
    """Challenges and sessions, in memory.

    :param citizens: the citizen key list.
    :param portal_id: names this portal in the signed message, so a signature for another
        service is useless here.
    :param challenge_ttl_s: how long a challenge may be answered.
    :param session_ttl_s: how long a session lasts.
    :param max_pending: challenges kept at once (the oldest go first).
    """

    def __init__(
        self,
        citizens: CitizenRegistry,
        portal_id: str = "renkei-portal",
        challenge_ttl_s: float = 120,
        session_ttl_s: float = 900,
        max_pending: int = 100_000,
    ) -> None:
        self.citizens = citizens
        self.portal_id = portal_id
        self.challenge_ttl_s = challenge_ttl_s
        self.session_ttl_s = session_ttl_s
        self.max_pending = max_pending
        self._challenges: OrderedDict[str, float] = OrderedDict()
        self._sessions: dict[bytes, Session] = {}

    def challenge(self) -> str:
        """A fresh single-use challenge."""
        value = secrets.token_urlsafe(32)
        self._challenges[value] = time.monotonic() + self.challenge_ttl_s
        while len(self._challenges) > self.max_pending:
            self._challenges.popitem(last=False)
        return value

    def login(self, resident_code: str, challenge: str, signature: bytes) -> tuple[str, Session]:
        """Check the signed challenge; return a new session token and the session.

        :raises AuthenticationError: for any reason (the reason is not told).
        """
        expires = self._challenges.pop(challenge, None)
        if expires is None or expires < time.monotonic():
            raise AuthenticationError("authentication failed")
        citizen = self.citizens.lookup(resident_code)
        if citizen is None:
            raise AuthenticationError("authentication failed")
        public_key, audit_key = citizen
        try:
            verify(public_key, login_message(self.portal_id, challenge, resident_code), signature)
        except SignatureError as exc:
            raise AuthenticationError("authentication failed") from exc
        token = secrets.token_urlsafe(32)
        session = Session(audit_key, resident_code, time.monotonic() + self.session_ttl_s)
        self._sessions[_digest(token)] = session
        if len(self._sessions) % 1024 == 0:
            self._purge()
        return token, session

    def session(self, token: str | None) -> Session | None:
        """The live session of ``token``, if any."""
        if not token:
            return None
        session = self._sessions.get(_digest(token))
        if session is None or session.expires < time.monotonic():
            return None
        return session

    def logout(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if s.expires < now]:
            del self._sessions[key]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
